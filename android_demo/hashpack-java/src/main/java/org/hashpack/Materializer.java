package org.hashpack;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns a {@code --materializable} once .tflite into a model with constant weights (on the device).
 *
 * <p>Why: LiteRT's XNNPACK delegate only accelerates constant conv filters and pre-packs only
 * constant fully-connected weights, so weights that a once model keeps in resource variables run on
 * slower kernels. A materializable once file carries, in its {@code Model.metadata}, a template (the
 * main graph with each such weight as a constant stored outside the flatbuffer, at a fixed offset)
 * and a JSON slot table. The app runs the file's {@code hashpack_weights} signature once (LiteRT
 * computes every weight, exactly as in once mode), passes the outputs here, and loads the returned
 * bytes into a second interpreter: inference then runs at the speed of the expanded export. See
 * docs/TFLITE.md and {@code exporter/tflite/materialize.py} (the same steps in Python).
 *
 * <p>{@link #materializeFromHpk} fills the same template without LiteRT, from the .hpk's params and
 * the recipe each slot carries (faster: the init subgraph costs 30–150 ns per weight at real size).
 *
 * <p>Only a few fields of the TFLite flatbuffer are read, with every offset checked: a truncated
 * or hostile file gives {@link IllegalArgumentException} with a message, never an index error.
 */
public final class Materializer {
    /** Signature of a materializable once model that returns every weight, by name. */
    public static final String WEIGHTS_SIGNATURE = "hashpack_weights";
    /** Its one input (float32 [1], ignored: LiteRT's Java runSignature refuses an empty input map). */
    public static final String WEIGHTS_TRIGGER = "trigger";

    static final String TEMPLATE_METADATA = "hashpack_template";
    static final String SLOTS_METADATA = "hashpack_slots";
    private static final long MAX_MODEL_BYTES = Integer.MAX_VALUE - 8;

    private Materializer() {}

    /** One weight's place in the materialized model. */
    public static final class Slot {
        public final String variable;
        public final int offset;
        public final int size;
        /** The JSON recipe (materializeFromHpk), or null when the slot has none. */
        final Object recipe;

        Slot(String variable, int offset, int size, Object recipe) {
            this.variable = variable;
            this.offset = offset;
            this.size = size;
            this.recipe = recipe;
        }
    }

    /** The slots of {@code onceModel}: which signature output goes where, in bytes. */
    public static List<Slot> slots(byte[] onceModel) {
        return slots(readMetadata(onceModel));
    }

    private static List<Slot> slots(Map<String, byte[]> metadata) {
        byte[] table = metadata.get(SLOTS_METADATA);
        if (table == null || !metadata.containsKey(TEMPLATE_METADATA)) {
            throw new IllegalArgumentException(
                    "this .tflite has no hashpack materialize template (export with --materializable)");
        }
        Object parsed;
        try {
            parsed = Json.parse(new String(table, StandardCharsets.UTF_8));
        } catch (Json.SyntaxException e) {
            throw new IllegalArgumentException("slot table: " + e.getMessage(), e);
        }
        if (!(parsed instanceof List)) {
            throw new IllegalArgumentException("slot table is not a JSON list");
        }
        List<Slot> out = new ArrayList<>();
        for (Object item : (List<?>) parsed) {
            if (!(item instanceof Map)) {
                throw new IllegalArgumentException("slot table entry is not an object");
            }
            Map<?, ?> slot = (Map<?, ?>) item;
            Object variable = slot.get("variable");
            long offset = integer(slot.get("offset"), "offset");
            long size = integer(slot.get("size"), "size");
            if (!(variable instanceof String) || size % 4 != 0 || offset + size > MAX_MODEL_BYTES) {
                throw new IllegalArgumentException("bad slot " + Json.repr(slot));
            }
            out.add(new Slot((String) variable, (int) offset, (int) size, slot.get("recipe")));
        }
        return Collections.unmodifiableList(out);
    }

    /**
     * The materialized model: the template with every weight written at its slot.
     *
     * @param onceModel the materializable once .tflite
     * @param weights the {@code hashpack_weights} signature's outputs, by name, as float32 values
     */
    public static byte[] materialize(byte[] onceModel, Map<String, float[]> weights) {
        Map<String, byte[]> metadata = readMetadata(onceModel);
        List<Slot> slots = slots(metadata);
        byte[] template = metadata.get(TEMPLATE_METADATA);
        for (Slot slot : slots) {
            float[] value = weights.get(slot.variable);
            if (value == null) {
                throw new IllegalArgumentException("no value given for weight " + slot.variable);
            }
            if (4L * value.length != slot.size) {
                throw new IllegalArgumentException(
                        "weight " + slot.variable + ": " + value.length + " floats, its slot holds " + slot.size / 4);
            }
        }
        long end = template.length;
        // the model cannot be larger than the aligned template plus the aligned weights
        long budget = (template.length + 63L) / 64 * 64;
        for (float[] value : weights.values()) {
            budget += (4L * value.length + 63) / 64 * 64;
        }
        for (Slot slot : slots) {
            if (slot.offset < template.length || (long) slot.offset + slot.size > budget) {
                throw new IllegalArgumentException("slot " + slot.variable + " at " + slot.offset + "+" + slot.size
                        + " lies outside template (" + template.length + " bytes) + weights (" + budget + ")");
            }
            end = Math.max(end, (long) slot.offset + slot.size);
        }
        byte[] out = new byte[(int) end];
        System.arraycopy(template, 0, out, 0, template.length);
        ByteBuffer view = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
        for (Slot slot : slots) {
            view.position(slot.offset);
            view.asFloatBuffer().put(weights.get(slot.variable));
        }
        return out;
    }

    /**
     * {@link #materialize} without running LiteRT: fills the template from the .hpk's decoded params.
     *
     * <p>Why: LiteRT's init subgraph decodes a weight in ~18 unfused elementwise ops (30–150 ns per
     * weight at real size, docs/TFLITE.md); hashpack-java decodes the .hpk far faster, and each
     * slot of a file exported by this version carries a recipe saying how its float32 values come
     * from one decoded param: {@code perm} (the PyTorch axis that becomes each axis), {@code rows}
     * ([start, stop) of axis 0) and a folded BatchNorm, {@code scale} then {@code shift}, each a
     * {@code [subgraph, tensor]} reference to a float32 constant of the once file, multiplied then
     * added in float32 with broadcasting. The bytes equal Python's {@code materialize_from_hpk}
     * (exporter/tflite/materialize.py) for the same params. Each weight is written straight into
     * the returned model: memory is that model plus the params.
     *
     * @param onceModel the materializable once .tflite
     * @param params the decoded params of the .hpk the file was exported from, by name (e.g.
     *     {@link Model#decodeParams})
     * @throws IllegalArgumentException for a file without template or recipes, a damaged file or
     *     recipe, or params that do not fit their slots
     */
    public static byte[] materializeFromHpk(byte[] onceModel, Map<String, Tensor> params) {
        return fromParams(onceModel, params::get);
    }

    /** As {@link #materializeFromHpk(byte[], Map)} with the params of {@code model} (row-gathered tables included). */
    public static byte[] materializeFromHpk(byte[] onceModel, Model model) {
        return fromParams(onceModel, model::weight);
    }

    /**
     * As {@link #materializeFromHpk(byte[], Map)}, decoding the params the recipes name straight
     * from {@code hpk} on {@code threads} threads (largest first) and writing each param's slots as
     * soon as it is decoded. The app's path: memory is the returned model plus one decoded param per
     * thread (not every param at once; each thread decodes into one reused buffer), and the writes
     * run on the decode threads.
     */
    public static byte[] materializeFromHpk(byte[] onceModel, final HpkFile hpk, int threads) {
        final Plan plan = plan(onceModel, name -> {
            Param param = hpk.params().get(name);
            return param == null ? null : param.shape();
        });
        final List<String> names = new ArrayList<>(plan.slotsOf.keySet());
        Collections.sort(names, (a, b) -> Long.compare(plan.numel(b), plan.numel(a)));
        ParallelWork.run(names.size(), threads, "hashpack-materialize", "materializing from " + hpk.source(), () -> {
            final ByteBuffer buffer = ByteBuffer.wrap(plan.out).order(ByteOrder.LITTLE_ENDIAN);
            return new ParallelWork.Worker() {
                private float[] scratch; // one buffer per thread, as large as the first (largest) param it takes

                @Override
                public void take(int k) {
                    Param param = hpk.params().get(names.get(k));
                    long numel = plan.numel(param.name());
                    if (scratch == null) {
                        scratch = new float[(int) numel]; // <= Integer.MAX_VALUE - 8: the plan checked
                    }
                    float[] values = Schemes.get(param.scheme()).decode(param, hpk, scratch);
                    // the scheme filled scratch[0, numel) or returned exactly numel values
                    if (values.length < numel || (values != scratch && values.length != numel)) {
                        throw new IllegalStateException("param " + param.name() + " decoded to " + values.length
                                + " values, its shape holds " + numel);
                    }
                    for (Slot slot : plan.slotsOf.get(param.name())) {
                        plan.views.get(slot.variable).write(buffer, slot.offset, values);
                    }
                }
            };
        });
        return plan.out;
    }

    /**
     * True if {@code onceModel} carries a template and every slot a recipe (files exported by this
     * version), so {@link #materializeFromHpk} applies; false for a plain once file, or one whose
     * slots predate recipes (use {@link #materialize} with LiteRT's outputs then).
     *
     * @throws IllegalArgumentException if the bytes are not a readable .tflite or the slot table is damaged
     */
    public static boolean hasRecipes(byte[] onceModel) {
        Map<String, byte[]> metadata = readMetadata(onceModel);
        if (!metadata.containsKey(TEMPLATE_METADATA) || !metadata.containsKey(SLOTS_METADATA)) {
            return false;
        }
        for (Slot slot : slots(metadata)) {
            if (!(slot.recipe instanceof Map)) {
                return false;
            }
        }
        return true;
    }

    /** Where materializeFromHpk finds a decoded param by name (null: not there). */
    private interface Params {
        Tensor get(String name);
    }

    /** A param's PyTorch shape by name (null: no such param). */
    private interface Shapes {
        int[] of(String name);
    }

    private static byte[] fromParams(byte[] onceModel, final Params params) {
        Plan plan = plan(onceModel, name -> {
            Tensor tensor = params.get(name);
            return tensor == null ? null : tensor.shape();
        });
        ByteBuffer buffer = ByteBuffer.wrap(plan.out).order(ByteOrder.LITTLE_ENDIAN);
        for (Map.Entry<String, List<Slot>> entry : plan.slotsOf.entrySet()) {
            float[] values = params.get(entry.getKey()).data();
            for (Slot slot : entry.getValue()) {
                plan.views.get(slot.variable).write(buffer, slot.offset, values);
            }
        }
        return plan.out;
    }

    /**
     * Every check of materializeFromHpk, before any param is read: the recipes against the params'
     * shapes, the slots against the template and the weights (their sizes, no overlaps), then the
     * output allocated and the template copied in.
     */
    private static final class Plan {
        final byte[] out;
        final Map<String, View> views; // by variable: the last slot naming it wins, as in Python
        final Map<String, List<Slot>> slotsOf = new LinkedHashMap<>(); // by param, the slots it fills
        private final Map<String, Long> numels = new HashMap<>();

        Plan(byte[] out, Map<String, View> views, List<Slot> slots) {
            this.out = out;
            this.views = views;
            for (Slot slot : slots) {
                View view = views.get(slot.variable);
                List<Slot> list = slotsOf.get(view.param);
                if (list == null) {
                    slotsOf.put(view.param, list = new ArrayList<>());
                }
                list.add(slot);
                numels.put(view.param, view.sourceNumel);
            }
        }

        long numel(String param) {
            return numels.get(param);
        }
    }

    private static Plan plan(byte[] onceModel, Shapes shapes) {
        Map<String, byte[]> metadata = readMetadata(onceModel);
        List<Slot> slots = slots(metadata);
        byte[] template = metadata.get(TEMPLATE_METADATA);
        Flat flat = new Flat(onceModel);
        int root = flat.table(flat.u32(0));
        Map<String, View> views = new LinkedHashMap<>();
        for (Slot slot : slots) {
            views.put(slot.variable, View.of(slot, shapes, flat, root));
        }
        // the model cannot be larger than the aligned template plus the aligned weights
        long budget = align(template.length);
        for (View view : views.values()) {
            budget += align(4 * view.count);
        }
        long end = template.length;
        for (Slot slot : slots) {
            if (slot.offset < template.length || (long) slot.offset + slot.size > budget) {
                throw new IllegalArgumentException("slot " + slot.variable + " at " + slot.offset + "+" + slot.size
                        + " lies outside template (" + template.length + " bytes) + weights (" + budget + ")");
            }
            long bytes = 4 * views.get(slot.variable).count;
            if (bytes != slot.size) {
                throw new IllegalArgumentException("slot " + slot.variable + ": its recipe gives " + bytes
                        + " bytes, its slot has " + slot.size);
            }
            end = Math.max(end, (long) slot.offset + slot.size);
        }
        // disjoint slots: the bytes do not depend on the order of the writes (the exporter never overlaps them)
        List<Slot> sorted = new ArrayList<>(slots);
        Collections.sort(sorted, (a, b) -> Integer.compare(a.offset, b.offset));
        Slot reach = null; // of the slots so far, the one that ends last
        for (Slot slot : sorted) {
            if (slot.size == 0) {
                continue;
            }
            if (reach != null && (long) reach.offset + reach.size > slot.offset) {
                throw new IllegalArgumentException("slots " + reach.variable + " and " + slot.variable + " overlap");
            }
            if (reach == null || (long) slot.offset + slot.size > (long) reach.offset + reach.size) {
                reach = slot;
            }
        }
        byte[] out = new byte[(int) end];
        System.arraycopy(template, 0, out, 0, template.length);
        return new Plan(out, views, slots);
    }

    private static long align(long bytes) {
        return (bytes + 63) / 64 * 64;
    }

    /**
     * One slot's recipe applied to its param, not yet evaluated: the viewed shape, the source stride
     * of each viewed axis, and the BatchNorm factors with their strides (0 where broadcast).
     */
    private static final class View {
        final String param;
        final long sourceNumel; // of the param, as the recipe was checked against
        final int base; // source index of the first viewed element (the first kept row)
        final int[] shape;
        final int[] strides;
        final long count;
        final float[] scale;
        final int[] scaleStrides;
        final float[] shift;
        final int[] shiftStrides;

        private View(String param, long sourceNumel, int base, int[] shape, int[] strides, Factor scale,
                Factor shift) {
            this.param = param;
            this.sourceNumel = sourceNumel;
            this.base = base;
            this.shape = shape;
            this.strides = strides;
            long n = 1;
            for (int d : shape) {
                n *= d;
            }
            this.count = n;
            this.scale = scale == null ? null : scale.values;
            this.scaleStrides = scale == null ? new int[shape.length] : scale.strides;
            this.shift = shift == null ? null : shift.values;
            this.shiftStrides = shift == null ? new int[shape.length] : shift.strides;
        }

        static View of(Slot slot, Shapes shapes, Flat flat, int root) {
            if (!(slot.recipe instanceof Map)) {
                throw new IllegalArgumentException("slot " + slot.variable
                        + ": no recipe (a once file exported by an older hashpack: use materialize())");
            }
            Map<?, ?> recipe = (Map<?, ?>) slot.recipe;
            Object name = recipe.get("param");
            if (!(name instanceof String)) {
                throw bad(slot, "param is not a name: " + Json.repr(name));
            }
            int[] torchShape = shapes.of((String) name);
            if (torchShape == null) {
                throw new IllegalArgumentException("slot " + slot.variable + ": no decoded param " + name
                        + " (pass the params of the .hpk this file was exported from)");
            }
            long numel = Tensor.numel(torchShape);
            if (numel > Integer.MAX_VALUE - 8) {
                throw bad(slot, "param " + name + " of shape " + java.util.Arrays.toString(torchShape) + " is too large");
            }
            int rank = torchShape.length;
            int[] torchStrides = new int[rank];
            for (int a = rank - 1, stride = 1; a >= 0; a--) { // row-major; the product is numel
                torchStrides[a] = stride;
                stride *= torchShape[a];
            }
            int[] kept = torchShape.clone();
            int base = 0;
            Object rows = recipe.get("rows");
            if (rows != null) {
                int[] range = ints(slot, "rows", rows, 2);
                if (rank == 0 || range[0] > range[1] || range[1] > torchShape[0]) {
                    throw bad(slot, "rows " + Json.repr(rows) + " do not fit param " + name + " of shape "
                            + java.util.Arrays.toString(torchShape));
                }
                kept[0] = range[1] - range[0];
                base = range[0] * torchStrides[0];
            }
            int[] perm = new int[rank];
            Object permValue = recipe.get("perm");
            if (permValue == null) {
                for (int k = 0; k < rank; k++) {
                    perm[k] = k;
                }
            } else {
                perm = ints(slot, "perm", permValue, rank);
                boolean[] seen = new boolean[rank];
                for (int axis : perm) {
                    if (axis >= rank || seen[axis]) {
                        throw bad(slot, "perm " + Json.repr(permValue) + " is not a permutation of the "
                                + rank + " axes of param " + name);
                    }
                    seen[axis] = true;
                }
            }
            int[] shape = new int[rank];
            int[] strides = new int[rank];
            for (int k = 0; k < rank; k++) {
                shape[k] = kept[perm[k]];
                strides[k] = torchStrides[perm[k]];
            }
            Factor scale = Factor.read(slot, "scale", recipe.get("scale"), shape, flat, root);
            Factor shift = Factor.read(slot, "shift", recipe.get("shift"), shape, flat, root);
            return new View((String) name, numel, base, shape, strides, scale, shift);
        }

        /** Writes the viewed (and folded) float32 values of {@code source} (the param) at {@code at}, little-endian. */
        void write(ByteBuffer out, int at, float[] source) {
            if (count == 0) {
                return;
            }
            int rank = shape.length;
            boolean inOrder = scale == null && shift == null;
            for (int k = rank - 1, stride = 1; inOrder && k >= 0; k--) {
                inOrder = shape[k] == 1 || strides[k] == stride;
                stride *= shape[k];
            }
            if (inOrder) { // identity view (rows included): one bulk copy
                ByteBuffer slice = out.duplicate().order(ByteOrder.LITTLE_ENDIAN);
                slice.position(at);
                slice.asFloatBuffer().put(source, base, (int) count);
                return;
            }
            int last = rank - 1; // -1 for a scalar param (folded): one row of one value
            int n = rank == 0 ? 1 : shape[last];
            int s = rank == 0 ? 0 : strides[last];
            int a = rank == 0 ? 0 : scaleStrides[last];
            int b = rank == 0 ? 0 : shiftStrides[last];
            int[] index = new int[Math.max(rank, 1)];
            int src = base;
            int sc = 0;
            int sh = 0;
            // each row is computed into a float array, then copied into the model in one bulk put:
            // the same float32 values and bytes as a put per element, with fewer bounds checks
            float[] row = new float[n];
            ByteBuffer slice = out.duplicate().order(ByteOrder.LITTLE_ENDIAN);
            slice.position(at);
            java.nio.FloatBuffer floats = slice.asFloatBuffer();
            // e.g. a 1x1 conv with its BatchNorm scale: a source run times one factor per row, a loop
            // without strides that the JIT can vectorize (the same float32 products as the general one)
            boolean contiguousScaled = s == 1 && a == 0 && scale != null && shift == null;
            for (long r = 0, rowCount = count / n; r < rowCount; r++) {
                if (contiguousScaled) {
                    float f = scale[sc];
                    for (int i = 0; i < n; i++) {
                        row[i] = source[src + i] * f;
                    }
                } else if (shift == null && scale == null) {
                    for (int i = 0; i < n; i++) {
                        row[i] = source[src + i * s];
                    }
                } else if (shift == null) {
                    for (int i = 0; i < n; i++) {
                        row[i] = source[src + i * s] * scale[sc + i * a];
                    }
                } else if (scale == null) {
                    for (int i = 0; i < n; i++) {
                        row[i] = source[src + i * s] + shift[sh + i * b];
                    }
                } else {
                    for (int i = 0; i < n; i++) {
                        float value = source[src + i * s] * scale[sc + i * a]; // rounded to float32 here,
                        row[i] = value + shift[sh + i * b]; // then added: numpy's two steps
                    }
                }
                floats.put(row, 0, n);
                for (int k = last - 1; k >= 0; k--) { // next row: an odometer over the outer axes
                    src += strides[k];
                    sc += scaleStrides[k];
                    sh += shiftStrides[k];
                    if (++index[k] < shape[k]) {
                        break;
                    }
                    index[k] = 0;
                    src -= strides[k] * shape[k];
                    sc -= scaleStrides[k] * shape[k];
                    sh -= shiftStrides[k] * shape[k];
                }
            }
        }
    }

    /** A folded BatchNorm's float32 constant, read from the once file, and its broadcast strides. */
    private static final class Factor {
        final float[] values;
        final int[] strides; // per viewed axis: 0 where the constant broadcasts

        private Factor(float[] values, int[] strides) {
            this.values = values;
            this.strides = strides;
        }

        /** The constant {@code ref} = [subgraph, tensor] names (null for none), checked against {@code shape}. */
        static Factor read(Slot slot, String key, Object ref, int[] shape, Flat f, int root) {
            if (ref == null) {
                return null;
            }
            int[] at = ints(slot, key, ref, 2);
            int subgraphs = f.vector(root, 2); // Model.subgraphs
            if (subgraphs < 0 || at[0] >= f.length(subgraphs)) {
                throw bad(slot, key + " " + Json.repr(ref) + " is out of range (no such subgraph)");
            }
            int tensors = f.vector(f.table(f.element(subgraphs, at[0])), 0); // SubGraph.tensors
            if (tensors < 0 || at[1] >= f.length(tensors)) {
                throw bad(slot, key + " " + Json.repr(ref) + " is out of range (no such tensor)");
            }
            int tensor = f.table(f.element(tensors, at[1]));
            int typeAt = f.field(tensor, 1); // Tensor.type: FLOAT32 = 0, the default
            int type = typeAt < 0 ? 0 : f.u8(typeAt);
            int bufferAt = f.field(tensor, 2); // Tensor.buffer
            long index = bufferAt < 0 ? 0 : f.u32(bufferAt);
            int buffers = f.vector(root, 4);
            int data = -1;
            if (buffers >= 0 && index > 0 && index < f.length(buffers)) {
                data = f.vector(f.table(f.element(buffers, (int) index)), 0); // Buffer.data
            }
            long bytes = data < 0 ? 0 : f.length(data);
            if (type != 0 || bytes == 0) {
                throw bad(slot, key + " " + Json.repr(ref) + " is not a float32 constant");
            }
            int dims = f.vector(tensor, 0); // Tensor.shape
            int rank = dims < 0 ? 0 : f.length(dims);
            if (rank > shape.length) {
                throw bad(slot, key + " of rank " + rank + " does not fit the weight " + java.util.Arrays.toString(shape));
            }
            int[] own = new int[rank];
            long numel = 1;
            for (int k = 0; k < rank; k++) {
                own[k] = f.i32(dims + 4 + 4 * k);
                if (own[k] < 0) {
                    throw bad(slot, key + " " + Json.repr(ref) + " has a negative dimension");
                }
                numel *= own[k]; // at most shape.length factors of 2^31: no overflow before the check
                if (numel > Integer.MAX_VALUE) {
                    break;
                }
            }
            if (bytes != 4 * numel) {
                throw bad(slot, key + " " + Json.repr(ref) + ": " + bytes + " bytes for shape "
                        + java.util.Arrays.toString(own));
            }
            int[] strides = new int[shape.length];
            for (int k = rank - 1, stride = 1, axis = shape.length - 1; k >= 0; k--, axis--) { // right-aligned
                if (own[k] != shape[axis] && own[k] != 1) {
                    throw bad(slot, key + " of shape " + java.util.Arrays.toString(own) + " does not fit the weight "
                            + java.util.Arrays.toString(shape));
                }
                strides[axis] = own[k] == 1 ? 0 : stride;
                stride *= own[k];
            }
            return new Factor(f.floats(data + 4, (int) numel), strides);
        }
    }

    /** A JSON list of {@code n} non-negative ints (int range), or a clear error. */
    private static int[] ints(Slot slot, String key, Object value, int n) {
        if (!(value instanceof List) || ((List<?>) value).size() != n) {
            throw bad(slot, key + " " + Json.repr(value) + " is not a list of " + n + " integers");
        }
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            Object item = ((List<?>) value).get(i);
            if (!(item instanceof java.math.BigInteger) || ((java.math.BigInteger) item).signum() < 0
                    || ((java.math.BigInteger) item).bitLength() > 31) {
                throw bad(slot, key + " " + Json.repr(value) + " is not a list of " + n + " non-negative integers");
            }
            out[i] = ((java.math.BigInteger) item).intValue();
        }
        return out;
    }

    private static IllegalArgumentException bad(Slot slot, String what) {
        return new IllegalArgumentException("slot " + slot.variable + ": bad recipe (" + what + ")");
    }

    /** A .tflite model's {@code Model.metadata} entries: name to buffer bytes. */
    public static Map<String, byte[]> readMetadata(byte[] model) {
        Flat f = new Flat(model);
        int root = f.table(f.u32(0));
        int buffers = f.vector(root, 4); // Model.buffers
        int entries = f.vector(root, 6); // Model.metadata
        Map<String, byte[]> out = new LinkedHashMap<>();
        if (entries < 0) {
            return out;
        }
        for (int i = 0, n = f.length(entries); i < n; i++) {
            int entry = f.table(f.element(entries, i));
            int nameAt = f.field(entry, 0);
            String name = nameAt < 0 ? "" : f.string(nameAt + f.u32(nameAt));
            int bufferAt = f.field(entry, 1);
            long index = bufferAt < 0 ? 0 : f.u32(bufferAt);
            if (buffers < 0 || index >= f.length(buffers)) {
                throw new IllegalArgumentException("metadata " + name + ": buffer " + index + " does not exist");
            }
            int buffer = f.table(f.element(buffers, (int) index));
            int data = f.vector(buffer, 0);
            out.put(name, data < 0 ? new byte[0] : f.bytes(data + 4, f.length(data)));
        }
        return out;
    }

    private static long integer(Object value, String what) {
        if (!(value instanceof Number) || ((Number) value).doubleValue() != ((Number) value).longValue()
                || ((Number) value).longValue() < 0) {
            throw new IllegalArgumentException("slot " + what + " is not a non-negative integer: " + value);
        }
        return ((Number) value).longValue();
    }

    /** Bounds-checked reads of the little-endian flatbuffer wire format (tables, vectors, strings). */
    private static final class Flat {
        private final ByteBuffer b;

        Flat(byte[] data) {
            b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        }

        private void need(long at, long count) {
            if (at < 0 || count < 0 || at + count > b.limit()) {
                throw new IllegalArgumentException(
                        "not a valid .tflite: reading " + count + " bytes at " + at + " of " + b.limit());
            }
        }

        int u32(int at) {
            need(at, 4);
            long value = b.getInt(at) & 0xffffffffL;
            if (value > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("not a valid .tflite: offset " + value + " at " + at);
            }
            return (int) value;
        }

        int u8(int at) {
            need(at, 1);
            return b.get(at) & 0xff;
        }

        int i32(int at) {
            need(at, 4);
            return b.getInt(at);
        }

        /** {@code count} little-endian float32 values at {@code at}. */
        float[] floats(int at, int count) {
            need(at, 4L * count);
            float[] out = new float[count];
            ByteBuffer view = b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
            view.position(at);
            view.asFloatBuffer().get(out);
            return out;
        }

        int u16(int at) {
            need(at, 2);
            return b.getShort(at) & 0xffff;
        }

        /** A table's position, checking its vtable. */
        int table(int at) {
            need(at, 4);
            long vtable = (long) at - b.getInt(at);
            need(vtable, 4);
            need(vtable, u16((int) vtable));
            return at;
        }

        /** Absolute position of field {@code id} of the table at {@code table}, or -1 when absent. */
        int field(int table, int id) {
            int vtable = table - b.getInt(table);
            int size = u16(vtable);
            int slot = 4 + 2 * id;
            if (slot + 2 > size) {
                return -1;
            }
            int offset = u16(vtable + slot);
            return offset == 0 ? -1 : table + offset;
        }

        /** Position of the vector (its length word) that field {@code id} points to, or -1. */
        int vector(int table, int id) {
            int at = field(table, id);
            if (at < 0) {
                return -1;
            }
            long target = (long) at + u32(at);
            need(target, 4);
            return (int) target;
        }

        int length(int vector) {
            int n = u32(vector);
            need(vector + 4L, 0);
            return n;
        }

        /** The table an element of a vector of offsets points to. */
        int element(int vector, int i) {
            int at = vector + 4 + 4 * i;
            need(at, 4);
            long target = (long) at + u32(at);
            need(target, 4);
            return (int) target;
        }

        String string(int at) {
            int n = u32(at);
            return new String(bytes(at + 4, n), StandardCharsets.UTF_8);
        }

        byte[] bytes(int at, int count) {
            need(at, count);
            byte[] out = new byte[count];
            b.position(at);
            b.get(out);
            return out;
        }
    }
}
