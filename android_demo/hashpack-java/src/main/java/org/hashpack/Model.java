package org.hashpack;

import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.hashpack.ops.Embedding;
import org.hashpack.ops.IdsKernel;
import org.hashpack.ops.Kernel;
import org.hashpack.ops.Op;
import org.hashpack.ops.Ops;
import org.hashpack.ops.Rows;

/**
 * A reference float32 runtime for {@code .hpk} files: regenerates every param through its
 * {@link Scheme}, binds every node to its kernel (the reader has checked every shape), then
 * {@link #run} walks the graph.
 *
 * <pre>{@code
 * Model model = Model.load(new File("model.hpk"));
 * float[] logits = model.run(image, 1);          // image: [1, *model.inputShape()] row-major
 * float[] scores = textModel.run(tokenIds, 1);   // an int32 input (token ids): int[]
 * Model.GoldenCheck check = model.checkGolden(1e-4, 1e-4);
 * }</pre>
 *
 * <p>Memory: the virtual params are materialised ({@link HpkFile#virtualParameterCount()} floats,
 * at most 2^28 per the format), except a {@code hashed} embedding table read only by
 * {@code Embedding} nodes: its rows are regenerated per batch from the buckets, only those the ids
 * look up (see {@link #Model(HpkFile, boolean)}). A {@code Model} is immutable; {@link #run} is
 * thread-safe.
 */
public final class Model {
    private final HpkFile file;
    private final Map<String, Tensor> weights;
    private final Map<String, Rows> gathered;
    private final List<Step> steps = new ArrayList<>();
    private final int valueCount;
    private final int outputSlot;
    private final double maxSampleElements;

    /** One bound node: the kernel, where its inputs are, where its output goes, what dies after it. */
    private static final class Step {
        final Node node;
        final Kernel kernel;
        final int[] inputSlots;
        final int outputSlot;
        final boolean ids; // reads the int32 graph input (Embedding)
        int[] freeAfter = new int[0];

        Step(Node node, Kernel kernel, int[] inputSlots, int outputSlot) {
            this.node = node;
            this.kernel = kernel;
            this.inputSlots = inputSlots;
            this.outputSlot = outputSlot;
            this.ids = kernel instanceof IdsKernel;
        }
    }

    /** Reads, validates and prepares {@code file}. */
    public static Model load(File file) throws HpkFormatException {
        return new Model(HpkReader.read(file));
    }

    /**
     * Prepares a file the reader validated (shapes included): decodes every param through its scheme
     * (hashed embedding tables row by row at run time) and binds every node to its kernel. Params
     * are decoded on up to {@link #DEFAULT_DECODE_THREADS} threads.
     */
    public Model(HpkFile file) {
        this(file, DEFAULT_DECODE_THREADS, true);
    }

    /** Decode threads by default: the cores, at most 4 (params are independent; memory is the same). */
    public static final int DEFAULT_DECODE_THREADS = Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors()));

    /**
     * As {@link #Model(HpkFile)}, decoding params on {@code decodeThreads} threads (1: this thread).
     * Every param is decoded exactly once into its own array, so memory is one dense copy of the
     * weights plus the dequantized spaces, whatever the thread count; the weights are the same bits.
     */
    public Model(HpkFile file, int decodeThreads) {
        this(file, decodeThreads, true);
    }

    /**
     * As {@link #Model(HpkFile)}; with {@code gatherRows} false, hashed embedding tables are decoded
     * whole at load like every other param (V·D floats held; no hashing per batch), for comparison.
     */
    public Model(HpkFile file, boolean gatherRows) {
        this(file, DEFAULT_DECODE_THREADS, gatherRows);
    }

    private Model(HpkFile file, int decodeThreads, boolean gatherRows) {
        this.file = file;
        Map<String, Rows> tables = new LinkedHashMap<>();
        if (gatherRows) {
            for (Param param : file.params().values()) {
                if (HashedRows.supports(param) && onlyEmbeddingTable(file, param.name())) {
                    tables.put(param.name(), new HashedRows(param, file));
                }
            }
        }
        this.gathered = Collections.unmodifiableMap(tables);
        this.weights = Collections.unmodifiableMap(decodeAll(file, decodeThreads, tables.keySet()));

        Map<String, Integer> slots = new HashMap<>();
        slots.put(file.input().name(), 0);
        double largest = file.input().sampleSize();
        for (Node node : file.nodes()) {
            List<int[]> inputShapes = new ArrayList<>();
            int[] inputSlots = new int[node.inputs().size()];
            for (int k = 0; k < inputSlots.length; k++) {
                inputSlots[k] = slots.get(node.inputs().get(k));
                inputShapes.add(file.valueShape(node.inputs().get(k)));
            }
            Map<String, Tensor> params = new LinkedHashMap<>();
            for (Map.Entry<String, String> slot : node.params().entrySet()) {
                params.put(slot.getKey(), weights.get(slot.getValue()));
            }
            Op op = Ops.get(node.op());
            Rows table = op.takesIds() ? tables.get(node.params().get("weight")) : null;
            Kernel kernel = table != null ? Embedding.gather(node, table) : op.kernel(node, inputShapes, params);
            largest = Math.max(largest, Op.numel(file.valueShape(node.output())));
            int slot = slots.size();
            slots.put(node.output(), slot);
            steps.add(new Step(node, kernel, inputSlots, slot));
        }
        this.valueCount = slots.size();
        this.outputSlot = slots.get(file.output().name());
        this.maxSampleElements = largest;
        planFrees();
    }

    /**
     * Every param of {@code file} decoded (hashed embedding tables whole), by name, on
     * {@code threads} threads, without binding the graph: what {@link Materializer#materializeFromHpk}
     * needs, at the cost of one float32 copy of the virtual weights.
     */
    public static Map<String, Tensor> decodeParams(HpkFile file, int threads) {
        return Collections.unmodifiableMap(decodeAll(file, threads, Collections.<String>emptySet()));
    }

    private static Map<String, Tensor> decodeAll(final HpkFile file, int threads, java.util.Set<String> skip) {
        final List<Param> params = new ArrayList<>();
        for (Param param : file.params().values()) {
            if (!skip.contains(param.name())) {
                params.add(param);
            }
        }
        final float[][] values = new float[params.size()][];
        // Largest params first, handed out one at a time: the threads finish together.
        final Integer[] order = new Integer[params.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Long.compare(numel(params.get(b)), numel(params.get(a))));
        ParallelWork.run(order.length, threads, "hashpack-decode", "decoding " + file.source(), () -> k -> {
            Param param = params.get(order[k]);
            values[order[k]] = Schemes.get(param.scheme()).decode(param, file);
        });
        Map<String, Tensor> decoded = new LinkedHashMap<>();
        for (int i = 0; i < params.size(); i++) {
            decoded.put(params.get(i).name(), new Tensor(params.get(i).shape(), values[i]));
        }
        return decoded;
    }

    private static long numel(Param param) {
        long n = 1;
        for (int d : param.shape()) {
            n *= d;
        }
        return n;
    }

    private Tensor decode(Param param) {
        return new Tensor(param.shape(), Schemes.get(param.scheme()).decode(param, file));
    }

    /** True if every node that reads param {@code name} is an Embedding reading it as its table. */
    private static boolean onlyEmbeddingTable(HpkFile file, String name) {
        for (Node node : file.nodes()) {
            for (Map.Entry<String, String> slot : node.params().entrySet()) {
                if (slot.getValue().equals(name)
                        && !(Ops.get(node.op()).takesIds() && "weight".equals(slot.getKey()))) {
                    return false;
                }
            }
        }
        return true;
    }

    /** After each step, drop the values no later step reads (the graph output is kept). */
    private void planFrees() {
        int[] lastUse = new int[valueCount];
        Arrays.fill(lastUse, -1);
        for (int s = 0; s < steps.size(); s++) {
            for (int slot : steps.get(s).inputSlots) {
                lastUse[slot] = s;
            }
        }
        for (int s = 0; s < steps.size(); s++) {
            List<Integer> dead = new ArrayList<>();
            for (int slot : steps.get(s).inputSlots) {
                if (lastUse[slot] == s && slot != outputSlot && !dead.contains(slot)) {
                    dead.add(slot);
                }
            }
            int[] free = new int[dead.size()];
            for (int i = 0; i < free.length; i++) {
                free[i] = dead.get(i);
            }
            steps.get(s).freeAfter = free;
        }
    }

    public HpkFile file() {
        return file;
    }

    /** The input shape without the batch dimension. */
    public int[] inputShape() {
        return file.input().sampleShape();
    }

    /** The output shape without the batch dimension. */
    public int[] outputShape() {
        return file.output().sampleShape();
    }

    /**
     * The decoded float32 value of param {@code name} (shared: do not modify), or null. A row-gathered
     * embedding table is decoded whole on each call (not kept).
     */
    public Tensor weight(String name) {
        Tensor weight = weights.get(name);
        if (weight == null && gathered.containsKey(name)) {
            weight = decode(file.params().get(name));
        }
        return weight;
    }

    /** Every param decoded at load, by name (row-gathered embedding tables are not: see {@link #weight}). */
    public Map<String, Tensor> weights() {
        return weights;
    }

    /** The names of the hashed embedding tables whose rows are regenerated per batch. */
    public java.util.Set<String> gatheredTables() {
        return gathered.keySet();
    }

    /** True if the graph input is int32 token ids: run it with {@link #run(int[], int)}. */
    public boolean takesIds() {
        return file.input().isIds();
    }

    /**
     * Runs the graph on {@code batch} samples: {@code input} holds {@code batch * numel(inputShape())}
     * floats (row-major, NCHW for images); returns {@code batch * numel(outputShape())} floats. A model
     * of token ids ({@link #takesIds()}) also accepts floats holding whole numbers (golden inputs are
     * stored so), but {@link #run(int[], int)} is its API.
     *
     * @throws IllegalArgumentException if the input length does not match, or the batch is too large
     *     for Java arrays, or (ids) a value is not a whole number in the int32 range
     * @throws IdsOutOfRangeException if a token id is not a row of an Embedding's table
     */
    public float[] run(float[] input, int batch) {
        checkInput(input.length, batch);
        if (!takesIds()) {
            return execute(input, null, batch);
        }
        int[] ids = new int[input.length];
        for (int i = 0; i < ids.length; i++) {
            float v = input[i];
            if (v != Math.rint(v) || v < -2147483648.0 || v > 2147483647.0) {
                throw new IllegalArgumentException("this model takes integer token ids; input value " + v
                        + " at " + i + " is not one");
            }
            ids[i] = (int) v;
        }
        return execute(null, ids, batch);
    }

    /**
     * Runs a model whose input is int32 token ids ({@link #takesIds()}): {@code ids} holds
     * {@code batch * numel(inputShape())} ids, row-major; returns {@code batch * numel(outputShape())}
     * floats.
     *
     * @throws IllegalArgumentException if the model takes floats, the length does not match, or the
     *     batch is too large for Java arrays
     * @throws IdsOutOfRangeException if an id is outside an Embedding's {@code [0, V)} rows (the
     *     message names the file and the node)
     */
    public float[] run(int[] ids, int batch) {
        if (!takesIds()) {
            throw new IllegalArgumentException(file.source() + " takes float32 input, not token ids: call "
                    + "run(float[], int)");
        }
        checkInput(ids.length, batch);
        return execute(null, ids, batch);
    }

    private void checkInput(int length, int batch) {
        long sample = file.input().sampleSize();
        if (batch < 1 || length != batch * sample) {
            throw new IllegalArgumentException("input of " + length + (takesIds() ? " ids" : " floats")
                    + " does not match " + batch + " x " + batchShape(inputShape()));
        }
        if (batch * maxSampleElements > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("batch " + batch + " is too large for this model (an activation of "
                    + (long) maxSampleElements + " elements per sample)");
        }
    }

    private float[] execute(float[] input, int[] ids, int batch) {
        float[][] values = new float[valueCount][];
        values[0] = input;
        for (Step step : steps) {
            if (step.ids) {
                try {
                    values[step.outputSlot] = ((IdsKernel) step.kernel).runIds(batch, ids);
                } catch (IdsOutOfRangeException e) {
                    throw new IdsOutOfRangeException(file.source() + ": " + step.node.describe() + ": "
                            + e.getMessage());
                }
                continue;
            }
            float[][] inputs = new float[step.inputSlots.length][];
            for (int k = 0; k < inputs.length; k++) {
                inputs[k] = values[step.inputSlots[k]];
            }
            values[step.outputSlot] = step.kernel.run(batch, inputs);
            for (int slot : step.freeAfter) {
                values[slot] = null;
            }
        }
        float[] out = values[outputSlot];
        return out == input ? input.clone() : out; // a graph of pure reshapes returns a copy
    }

    /** The outcome of {@link #checkGolden}. */
    public static final class GoldenCheck {
        private final boolean passed;
        private final int samples;
        private final double maxAbsError;
        private final int mismatches;
        private final int firstMismatch;

        GoldenCheck(boolean passed, int samples, double maxAbsError, int mismatches, int firstMismatch) {
            this.passed = passed;
            this.samples = samples;
            this.maxAbsError = maxAbsError;
            this.mismatches = mismatches;
            this.firstMismatch = firstMismatch;
        }

        /** True if every output value is within tolerance. */
        public boolean passed() {
            return passed;
        }

        /** Number of golden samples run. */
        public int samples() {
            return samples;
        }

        /** The largest |ours - golden| (NaN if either side had a NaN). */
        public double maxAbsError() {
            return maxAbsError;
        }

        /** Number of output values outside tolerance. */
        public int mismatches() {
            return mismatches;
        }

        /** Flat index of the first value outside tolerance, or -1. */
        public int firstMismatch() {
            return firstMismatch;
        }

        @Override
        public String toString() {
            return (passed ? "golden outputs match" : "golden outputs DIFFER (" + mismatches + " values, first at "
                    + firstMismatch + ")") + String.format(" over %d samples, max abs error %.3g", samples, maxAbsError);
        }
    }

    /** True if the file records golden inputs/outputs. */
    public boolean hasGolden() {
        return file.hasGolden();
    }

    /**
     * Runs the golden inputs recorded at pack time and compares with the recorded outputs like
     * {@code numpy.allclose}: {@code |ours - golden| <= atol + rtol * |golden|} for every value.
     *
     * @throws IllegalStateException if the file has no golden outputs ({@link #hasGolden()})
     */
    public GoldenCheck checkGolden(double atol, double rtol) {
        if (!file.hasGolden()) {
            throw new IllegalStateException(file.source() + " has no golden outputs");
        }
        int samples = file.goldenCount();
        float[] expected = file.goldenOutputs();
        float[] actual = run(file.goldenInputs(), samples);
        double maxAbs = 0;
        int mismatches = 0;
        int first = -1;
        for (int i = 0; i < expected.length; i++) {
            double diff = Math.abs((double) actual[i] - expected[i]);
            if (Double.isNaN(diff)) {
                maxAbs = Double.NaN; // sticks: NaN > x is false below
            } else if (diff > maxAbs) {
                maxAbs = diff;
            }
            if (!(diff <= atol + rtol * Math.abs((double) expected[i]))) {
                mismatches++;
                if (first < 0) {
                    first = i;
                }
            }
        }
        return new GoldenCheck(mismatches == 0, samples, maxAbs, mismatches, first);
    }

    private static String batchShape(int[] sample) {
        StringBuilder s = new StringBuilder("[N");
        for (int d : sample) {
            s.append(", ").append(d);
        }
        return s.append(']').toString();
    }
}
