package org.hashpack;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A validated {@code .hpk} file (docs/FORMAT.md §3): graph input/output, spaces, params, nodes,
 * the container's tensors and the optional golden pair. Produced only by {@link HpkReader}, so every
 * instance passed all checks of §6. Immutable (the space cache aside) and thread-safe.
 */
public final class HpkFile {
    private final String source;
    private final String producer;
    private final ValueInfo input;
    private final ValueInfo output;
    private final Map<String, Space> spaces;
    private final Map<String, Param> params;
    private final List<Node> nodes;
    private final Map<String, StoredTensor> tensors;
    private final Golden golden;
    private final Map<String, int[]> valueShapes;
    private final String sha256;
    private final Map<String, float[]> spaceCache = new ConcurrentHashMap<>();

    HpkFile(String source, String producer, ValueInfo input, ValueInfo output, Map<String, Space> spaces,
            Map<String, Param> params, List<Node> nodes, Map<String, StoredTensor> tensors, Golden golden,
            Map<String, int[]> valueShapes, String sha256) {
        this.source = source;
        this.producer = producer;
        this.input = input;
        this.output = output;
        this.spaces = spaces;
        this.params = params;
        this.nodes = nodes;
        this.tensors = tensors;
        this.golden = golden;
        this.valueShapes = valueShapes;
        this.sha256 = sha256;
    }

    /**
     * The file's {@code hashpack.sha256} (§3: lowercase hex), which the reader verified: it names
     * this exact file, e.g. to check that an export was made from it ({@link OnnxWeights}).
     */
    public String sha256() {
        return sha256;
    }

    /** The path or name the file was read from (the prefix of error messages). */
    public String source() {
        return source;
    }

    /** Free text naming the writer, e.g. {@code "hashpack 0.1.0"}. */
    public String producer() {
        return producer;
    }

    /** The graph input (version 1 has exactly one). */
    public ValueInfo input() {
        return input;
    }

    /** The graph output (version 1 has exactly one). */
    public ValueInfo output() {
        return output;
    }

    public Map<String, Space> spaces() {
        return spaces;
    }

    public Map<String, Param> params() {
        return params;
    }

    /** The graph, in topological order. */
    public List<Node> nodes() {
        return nodes;
    }

    /**
     * The shape (without the batch dimension) of a graph value, the input or a node output, as the
     * reader inferred it; null for an unknown name.
     */
    public int[] valueShape(String name) {
        int[] shape = valueShapes.get(name);
        return shape == null ? null : shape.clone();
    }

    /** Every tensor of the container, by name. */
    public Map<String, StoredTensor> tensors() {
        return tensors;
    }

    /** The tensor {@code name} (null if absent). */
    public StoredTensor tensor(String name) {
        return tensors.get(name);
    }

    /** The total number of virtual parameter values (at most 2^28): what {@link Model} allocates. */
    public long virtualParameterCount() {
        long total = 0;
        for (Param p : params.values()) {
            total += p.numel();
        }
        return total;
    }

    /**
     * The dequantized float32 bucket values of space {@code name} (§3): float32 as stored, float16
     * converted exactly, int8 times the scale in one float32 multiply. Computed once and cached; the
     * returned array is shared, do not modify it.
     */
    public float[] spaceValues(String name) {
        Space space = spaces.get(name);
        if (space == null) {
            throw new IllegalArgumentException("no space '" + name + "'");
        }
        float[] cached = spaceCache.get(name);
        if (cached == null) {
            cached = tensors.get(space.tensor()).toFloatArray();
            if ("int8".equals(space.dtype())) {
                float scale = space.scale();
                for (int i = 0; i < cached.length; i++) {
                    cached[i] = cached[i] * scale;
                }
            }
            spaceCache.put(name, cached);
        }
        return cached;
    }

    /** True if the file records golden inputs and outputs. */
    public boolean hasGolden() {
        return golden != null;
    }

    /** Number of golden samples (0 without golden). */
    public int goldenCount() {
        return golden == null ? 0 : golden.count;
    }

    /** True if the golden inputs are regenerated from a seed (version 2), not stored. */
    public boolean goldenGenerated() {
        return golden != null && golden.generated();
    }

    /** The golden inputs {@code [n, *input shape]}, flat (stored, or regenerated from the seed), or null. */
    public float[] goldenInputs() {
        if (golden == null) {
            return null;
        }
        if (golden.generated()) {
            long perSample = 1;
            for (int d : input.sampleShape()) {
                perSample *= d;
            }
            return Golden.generate(golden.seed, golden.count, perSample);
        }
        return tensors.get(golden.inputsTensor).toFloatArray();
    }

    /** The golden outputs {@code [n, *output shape]} recorded at pack time, flat, or null. */
    public float[] goldenOutputs() {
        return golden == null ? null : tensors.get(golden.outputsTensor).toFloatArray();
    }
}
