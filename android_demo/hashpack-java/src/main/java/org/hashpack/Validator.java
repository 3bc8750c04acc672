package org.hashpack;

import java.math.BigInteger;
import java.nio.charset.CharacterCodingException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.hashpack.ops.Limits;
import org.hashpack.ops.Op;
import org.hashpack.ops.Ops;
import org.hashpack.ops.ShapeException;

/**
 * Checks a parsed container's metadata against docs/FORMAT.md §3-§6 (steps 4-6 of §6; the
 * container did 1-3) and builds the {@link HpkFile}. Every failure is an {@link HpkFormatException}
 * naming what is wrong. Schemes use the typed field accessors so that their messages read alike.
 */
public final class Validator {
    static final String FORMAT_NAME = "hashpack";
    /** The format versions this reader knows (2 adds generated golden inputs, §3). */
    static final BigInteger FORMAT_VERSION = BigInteger.valueOf(2);
    static final String HASH_NAME = "hp32";
    /** The file's virtual parameters sum to at most this (1 GiB of float32). */
    public static final long MAX_TOTAL_VIRTUAL = 1L << 28;
    /** A virtual tensor has at most this many elements per stored value it is generated from. */
    public static final long MAX_EXPANSION = 1L << 16;
    /** Operations to regenerate every weight of a file (§6): seconds, not hours. */
    public static final long MAX_DECODE_WORK = 1L << 32;
    public static final int MAX_NODES = 100_000;
    /** Golden token ids are stored as F32: whole numbers up to 2^24 in magnitude are exact (§3). */
    public static final int MAX_EXACT_ID = 1 << 24;

    private final Container container;
    private final String source;
    private final Set<String> usedTensors = new HashSet<>();
    private final Map<String, Space> spaces = new LinkedHashMap<>();
    private int version = 1;

    Validator(Container container, String source) {
        this.container = container;
        this.source = source;
    }

    /** An exception naming the file; callers {@code throw v.fail(...)}. */
    public HpkFormatException fail(String message) {
        return new HpkFormatException(source, message);
    }

    HpkFile run() throws HpkFormatException {
        // §6.4: the metadata document and its identity.
        String metaText = container.metadata.get(Container.METADATA_KEY);
        String checksum = container.metadata.get(Container.CHECKSUM_KEY);
        Object parsed;
        try {
            parsed = Json.parse(metaText);
        } catch (Json.SyntaxException e) {
            throw fail("metadata is not valid JSON (" + e.getMessage() + ")");
        }
        if (!(parsed instanceof Map)) {
            throw fail("metadata is not a JSON object");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> meta = (Map<String, Object>) parsed;
        if (!FORMAT_NAME.equals(meta.get("format"))) {
            throw fail("format is " + Json.repr(meta.get("format")) + ", expected '" + FORMAT_NAME + "'");
        }
        if (!BigInteger.ONE.equals(meta.get("version")) && !FORMAT_VERSION.equals(meta.get("version"))) {
            throw fail("unsupported format version " + Json.repr(meta.get("version"))
                    + " (this reader knows 1, 2: update hashpack)");
        }
        version = ((BigInteger) meta.get("version")).intValue();
        if (!HASH_NAME.equals(meta.get("hash"))) {
            throw fail("unsupported hash " + Json.repr(meta.get("hash")) + " (this reader knows '" + HASH_NAME + "')");
        }

        // §6.5: SHA-256 of the metadata string's UTF-8 bytes followed by the data buffer.
        MessageDigest digest;
        try {
            digest = MessageDigest.getInstance("SHA-256");
            digest.update(Container.utf8(metaText));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("this JVM has no SHA-256", e);
        } catch (CharacterCodingException e) {
            throw fail("metadata string has no UTF-8 form (unpaired surrogate escape)");
        }
        digest.update(container.data.duplicate());
        if (!hex(digest.digest()).equals(checksum)) {
            throw fail("checksum mismatch: the file was altered or corrupted after it was written");
        }

        // §6.6: semantic checks, section by section.
        if (meta.containsKey("producer") && !(meta.get("producer") instanceof String)) {
            throw fail("metadata: producer has the wrong type (" + Json.typeName(meta.get("producer")) + ")");
        }
        ValueInfo input = valueInfo(meta, "inputs");
        ValueInfo output = valueInfo(meta, "outputs");
        checkSpaces(meta);
        Map<String, Param> params = checkParams(meta);
        Map<String, int[]> shapes = new LinkedHashMap<>();
        List<Node> nodes = checkNodes(meta, params, input, output, shapes);
        Golden golden = checkGolden(meta, input, output);
        Set<String> unused = new TreeSet<>(container.tensors.keySet());
        unused.removeAll(usedTensors);
        if (!unused.isEmpty()) {
            throw fail("tensor '" + unused.iterator().next() + "' is not referenced by the metadata");
        }
        Object producer = meta.get("producer");
        return new HpkFile(source, producer instanceof String ? (String) producer : "", input, output,
                Collections.unmodifiableMap(spaces), Collections.unmodifiableMap(params),
                Collections.unmodifiableList(nodes), container.tensors, golden, Collections.unmodifiableMap(shapes),
                checksum);
    }

    // ----------------------------------------------------------------------------- field access

    private Object field(Object obj, String key, String where) throws HpkFormatException {
        if (!(obj instanceof Map)) {
            throw fail(where + ": is not a JSON object (" + Json.typeName(obj) + ")");
        }
        if (!((Map<?, ?>) obj).containsKey(key)) {
            throw fail(where + ": missing field '" + key + "'");
        }
        return ((Map<?, ?>) obj).get(key);
    }

    private HpkFormatException wrongType(String key, Object value, String expected, String where) {
        return fail(where + ": field '" + key + "' has the wrong type (" + Json.typeName(value) + ", expected "
                + expected + ")");
    }

    /** The string field {@code key} of JSON object {@code obj}. */
    public String string(Object obj, String key, String where) throws HpkFormatException {
        Object value = field(obj, key, where);
        if (!(value instanceof String)) {
            throw wrongType(key, value, "string", where);
        }
        return (String) value;
    }

    /** The integer field {@code key} (any size; booleans and non-integral numbers rejected). */
    public BigInteger integer(Object obj, String key, String where) throws HpkFormatException {
        Object value = field(obj, key, where);
        if (!(value instanceof BigInteger)) {
            throw wrongType(key, value, "integer", where);
        }
        return (BigInteger) value;
    }

    /** The number field {@code key} (integer or not), as a double. */
    public double number(Object obj, String key, String where) throws HpkFormatException {
        Object value = field(obj, key, where);
        if (value instanceof BigInteger) {
            return ((BigInteger) value).doubleValue(); // beyond double range: infinity
        }
        if (!(value instanceof Double)) {
            throw wrongType(key, value, "number", where);
        }
        return (Double) value;
    }

    /** The array field {@code key}. */
    public List<?> list(Object obj, String key, String where) throws HpkFormatException {
        Object value = field(obj, key, where);
        if (!(value instanceof List)) {
            throw wrongType(key, value, "array", where);
        }
        return (List<?>) value;
    }

    /** The object field {@code key}. */
    @SuppressWarnings("unchecked")
    public Map<String, Object> object(Object obj, String key, String where) throws HpkFormatException {
        Object value = field(obj, key, where);
        if (!(value instanceof Map)) {
            throw wrongType(key, value, "object", where);
        }
        return (Map<String, Object>) value;
    }

    /** A space declared in the metadata (available while params are checked), or null. */
    public Space space(String name) {
        return spaces.get(name);
    }

    /**
     * Looks up tensor {@code name}, checks its dtype and shape, that no other declaration uses it and
     * that its float values are finite, and marks it referenced.
     */
    public StoredTensor tensor(Object name, DType dtype, long[] shape, String where) throws HpkFormatException {
        StoredTensor tensor = name instanceof String ? container.tensors.get(name) : null;
        if (tensor == null) {
            throw fail(where + ": tensor " + Json.repr(name) + " is missing from the file");
        }
        if (tensor.dtype() != dtype || !tensor.hasShape(shape)) {
            throw fail(where + ": tensor '" + name + "' is " + tensor.describe() + ", metadata declares "
                    + StoredTensor.describe(dtype, shape));
        }
        if (usedTensors.contains(name)) {
            throw fail(where + ": tensor '" + name + "' is used twice");
        }
        if (!tensor.allFinite()) {
            throw fail(where + ": tensor '" + name + "' holds NaN or infinite values");
        }
        usedTensors.add((String) name);
        return tensor;
    }

    static long[] toLongs(int[] shape) {
        long[] out = new long[shape.length];
        for (int i = 0; i < shape.length; i++) {
            out[i] = shape[i];
        }
        return out;
    }

    /**
     * A shape: a list of at most 8 positive integers below 2^31; with {@code batch}, the first entry
     * must be null (the batch dimension) and is dropped from the result.
     */
    private int[] shape(Object value, String where, boolean batch) throws HpkFormatException {
        if (!(value instanceof List) || ((List<?>) value).size() > Container.MAX_RANK) {
            throw fail(where + ": shape " + Json.repr(value) + " is not a list of at most 8 dimensions");
        }
        List<?> dims = (List<?>) value;
        int[] out = new int[dims.size()];
        for (int i = 0; i < dims.size(); i++) {
            Object dim = dims.get(i);
            if (batch && i == 0 && dim == null) {
                continue;
            }
            if (!(dim instanceof BigInteger) || ((BigInteger) dim).signum() <= 0
                    || ((BigInteger) dim).compareTo(BigInteger.valueOf(Hp32.MAX_VIRTUAL_SIZE)) > 0) {
                throw fail(where + ": dimension " + Json.repr(dim) + " of shape " + Json.repr(value)
                        + " is not an integer in [1, " + Hp32.MAX_VIRTUAL_SIZE + "]");
            }
            out[i] = ((BigInteger) dim).intValue();
        }
        if (batch) {
            if (dims.isEmpty() || dims.get(0) != null) {
                throw fail(where + ": shape " + Json.repr(value) + " must start with null (the batch dimension)");
            }
            int[] sample = new int[out.length - 1];
            System.arraycopy(out, 1, sample, 0, sample.length);
            return sample;
        }
        return out;
    }

    // --------------------------------------------------------------------------------- sections

    private ValueInfo valueInfo(Map<String, Object> meta, String key) throws HpkFormatException {
        List<?> items = list(meta, key, "metadata");
        if (items.size() != 1) {
            throw fail("metadata: " + key + " must list exactly one tensor in version 1, found " + items.size());
        }
        Object item = items.get(0);
        String name = string(item, "name", key);
        int[] shape = shape(((Map<?, ?>) item).get("shape"), key + " '" + name + "'", true);
        boolean ids = false;
        if ("inputs".equals(key) && ((Map<?, ?>) item).containsKey("dtype")) {
            String dtype = string(item, "dtype", key + " '" + name + "'");
            if (!"float32".equals(dtype) && !"int32".equals(dtype)) {
                throw fail(key + " '" + name + "': dtype '" + dtype + "' is not one of float32, int32");
            }
            ids = "int32".equals(dtype);
        }
        return new ValueInfo(name, shape, ids);
    }

    private void checkSpaces(Map<String, Object> meta) throws HpkFormatException {
        for (Map.Entry<String, Object> e : object(meta, "spaces", "metadata").entrySet()) {
            String name = e.getKey();
            Object spec = e.getValue();
            String where = "space '" + name + "'";
            BigInteger size = integer(spec, "size", where);
            if (size.signum() < 1 || size.compareTo(BigInteger.valueOf(Hp32.MAX_BUCKETS)) > 0) {
                throw fail(where + ": bucket count " + size + " outside [1, 2^30]");
            }
            String dtype = string(spec, "dtype", where);
            DType stored;
            if ("float32".equals(dtype)) {
                stored = DType.F32;
            } else if ("float16".equals(dtype)) {
                stored = DType.F16;
            } else if ("int8".equals(dtype)) {
                stored = DType.I8;
            } else {
                throw fail(where + ": unsupported bucket dtype " + Json.repr(dtype) + " (float32, float16, int8)");
            }
            String tensor = string(spec, "tensor", where);
            StoredTensor buckets = tensor(tensor, stored, new long[] {size.longValue()}, where);
            float scale = Float.NaN;
            if (stored == DType.I8) {
                scale = int8Scale(spec, buckets, where);
            }
            spaces.put(name, new Space(name, size.intValue(), dtype, tensor, scale));
        }
    }

    /** The scale of an int8 space: a positive float32 that keeps every dequantized bucket finite. */
    private float int8Scale(Object spec, StoredTensor buckets, String where) throws HpkFormatException {
        double value = number(spec, "scale", where);
        if (!(value > 0 && value <= Float.MAX_VALUE) || (double) (float) value != value) {
            throw fail(where + ": int8 scale " + Json.repr(((Map<?, ?>) spec).get("scale"))
                    + " is not a positive finite float32");
        }
        int peak = 0;
        java.nio.ByteBuffer raw = buckets.bytes();
        for (int i = 0; i < buckets.numel(); i++) {
            peak = Math.max(peak, Math.abs((int) raw.get(i)));
        }
        if (peak * value > Float.MAX_VALUE) {
            throw fail(where + ": int8 scale " + value + " makes bucket values overflow float32");
        }
        return (float) value;
    }

    private Map<String, Param> checkParams(Map<String, Object> meta) throws HpkFormatException {
        Map<String, Param> params = new LinkedHashMap<>();
        long totalVirtual = 0;
        long totalWork = 0;
        for (Map.Entry<String, Object> e : object(meta, "params", "metadata").entrySet()) {
            String name = e.getKey();
            Object spec = e.getValue();
            String where = "param '" + name + "'";
            String schemeName = string(spec, "scheme", where);
            Scheme scheme = Schemes.get(schemeName);
            if (scheme == null) {
                throw fail(where + ": unknown compression scheme '" + schemeName + "' (known: "
                        + String.join(", ", Schemes.names()) + ")");
            }
            int[] shape = shape(((Map<?, ?>) spec).get("shape"), where, false);
            Map<String, Object> fields = new LinkedHashMap<>();
            for (Map.Entry<?, ?> f : ((Map<?, ?>) spec).entrySet()) {
                if (!"scheme".equals(f.getKey()) && !"shape".equals(f.getKey())) {
                    fields.put((String) f.getKey(), f.getValue());
                }
            }
            Param param = new Param(name, schemeName, shape, fields);
            long numel = param.numel(); // saturates above 2^31 - 1
            if (numel > Hp32.MAX_VIRTUAL_SIZE) {
                throw fail(where + ": " + exactNumel(shape) + " elements exceed the 2^31-1 limit");
            }
            long stored = scheme.validate(param, this);
            if (stored >= 0 && numel > MAX_EXPANSION * stored) {
                throw fail(where + ": " + numel + " virtual elements from " + stored + " stored values exceeds the "
                        + MAX_EXPANSION + "x expansion limit");
            }
            totalVirtual += numel; // < 2^31 per param, and we stop at 2^28: no overflow
            if (totalVirtual > MAX_TOTAL_VIRTUAL) {
                throw fail("virtual parameters exceed the " + MAX_TOTAL_VIRTUAL + " limit at " + where);
            }
            // numel < 2^31 and at most ~2^14 operations a weight: no overflow before we stop at 2^32
            totalWork += numel * scheme.decodeWorkPerWeight(param);
            if (totalWork > MAX_DECODE_WORK) {
                throw fail("regenerating the weights would take more than " + MAX_DECODE_WORK
                        + " operations (limit reached at " + where + ")");
            }
            params.put(name, param);
        }
        return params;
    }

    private static BigInteger exactNumel(int[] shape) {
        BigInteger n = BigInteger.ONE;
        for (int d : shape) {
            n = n.multiply(BigInteger.valueOf(d));
        }
        return n;
    }

    /**
     * The graph (§5): nodes in topological order, each checked against its op's signature, then
     * its output shape inferred from its inputs' (filling {@code shapes}, per sample). Values and
     * work per sample are bounded by {@link Limits}; the graph output must have its declared shape.
     */
    private List<Node> checkNodes(Map<String, Object> meta, Map<String, Param> params, ValueInfo graphInput,
            ValueInfo graphOutput, Map<String, int[]> shapes) throws HpkFormatException {
        List<?> rawNodes = list(meta, "nodes", "metadata");
        if (rawNodes.size() > MAX_NODES) {
            throw fail(rawNodes.size() + " nodes exceed the " + MAX_NODES + " limit");
        }
        shapes.put(graphInput.name(), graphInput.sampleShape());
        double activations = Op.numel(graphInput.sampleShape());
        if (activations > Limits.MAX_ACTIVATIONS) {
            throw fail(String.format("inputs: %.0f elements per sample exceed the %d limit", activations,
                    Limits.MAX_ACTIVATIONS));
        }
        double work = 0;
        List<Node> nodes = new ArrayList<>(rawNodes.size());
        for (int index = 0; index < rawNodes.size(); index++) {
            Object raw = rawNodes.get(index);
            String where = "node #" + index;
            String opName = string(raw, "op", where);
            String name = string(raw, "name", where);
            where = "node '" + name + "' (" + opName + ")";
            Op op = Ops.get(opName);
            if (op == null) {
                throw fail(where + ": unknown op '" + opName + "'");
            }
            List<?> inputs = list(raw, "inputs", where);
            List<?> outputs = list(raw, "outputs", where);
            Map<String, Object> slots = object(raw, "params", where);
            Map<String, Object> attrs = object(raw, "attrs", where);
            List<String> inputNames = new ArrayList<>();
            List<int[]> inputShapes = new ArrayList<>();
            for (Object value : inputs) {
                if (!(value instanceof String) || !shapes.containsKey(value)) {
                    throw fail(where + ": input " + Json.repr(value) + " is not produced by an earlier node");
                }
                // int32 values (§5): the int32 graph input is the only one, and only ids inputs take it
                boolean wantsIds = op.takesIds() && inputNames.isEmpty();
                boolean isIds = graphInput.isIds() && graphInput.name().equals(value);
                if (wantsIds != isIds) {
                    throw fail(where + ": input '" + value + "' is "
                            + (wantsIds ? "float32 but must be int32 token ids" : "int32 but this op takes float32"));
                }
                inputNames.add((String) value);
                inputShapes.add(shapes.get(value));
            }
            if (outputs.size() != 1 || !(outputs.get(0) instanceof String)) {
                throw fail(where + ": must have exactly one output name");
            }
            String outputName = (String) outputs.get(0);
            if (shapes.containsKey(outputName)) {
                throw fail(where + ": output '" + outputName + "' is produced twice");
            }
            Map<String, String> slotNames = new LinkedHashMap<>();
            Map<String, Param> slotParams = new LinkedHashMap<>();
            for (Map.Entry<String, Object> slot : slots.entrySet()) {
                Object paramName = slot.getValue();
                if (!(paramName instanceof String) || !params.containsKey(paramName)) {
                    throw fail(where + ": param '" + slot.getKey() + "' refers to unknown param "
                            + Json.repr(paramName));
                }
                slotNames.put(slot.getKey(), (String) paramName);
                slotParams.put(slot.getKey(), params.get(paramName));
            }
            Node node = new Node(opName, name, inputNames, Collections.singletonList(outputName), slotNames,
                    new LinkedHashMap<>(attrs));
            String problem = op.check(node, slotParams);
            if (problem != null) {
                throw fail(where + ": " + problem);
            }
            Op.Inference inferred;
            try {
                inferred = op.infer(node, inputShapes, slotParams);
            } catch (ShapeException e) {
                throw fail(where + ": " + e.getMessage());
            }
            activations += Op.numel(inferred.shape());
            work += inferred.work();
            if (activations > Limits.MAX_ACTIVATIONS || work > Limits.MAX_WORK) {
                throw fail(where + ": the graph needs more than " + Limits.MAX_ACTIVATIONS + " values or "
                        + Limits.MAX_WORK + " operations per sample up to here");
            }
            shapes.put(outputName, inferred.shape());
            nodes.add(node);
        }
        String output = graphOutput.name();
        if (!shapes.containsKey(output) || output.equals(graphInput.name())) {
            throw fail("graph output '" + output + "' is not produced by any node");
        }
        if (!Arrays.equals(shapes.get(output), graphOutput.sampleShape())) {
            throw fail("outputs: '" + output + "' is declared " + Op.show(graphOutput.sampleShape())
                    + " but the graph computes " + Op.show(shapes.get(output)));
        }
        return nodes;
    }

    /** The golden section, or null if the file has none. */
    private Golden checkGolden(Map<String, Object> meta, ValueInfo input, ValueInfo output)
            throws HpkFormatException {
        Object spec = meta.get("golden");
        if (spec == null) {
            return null;
        }
        if (version >= 2 && spec instanceof Map && !((Map<?, ?>) spec).containsKey("inputs")) {
            return checkGeneratedGolden(spec, input, output);
        }
        String inputsName = string(spec, "inputs", "golden");
        String outputsName = string(spec, "outputs", "golden");
        StoredTensor inputs = container.tensors.get(inputsName);
        long count = inputs != null && inputs.shape().length >= 1 ? inputs.shape()[0] : 0;
        if (count < 1) {
            throw fail("golden: inputs tensor '" + inputsName + "' is missing or empty");
        }
        StoredTensor goldenInputs = tensor(inputsName, DType.F32, withBatch(count, input.sampleShape()),
                "golden inputs");
        if (input.isIds()) {
            for (float id : goldenInputs.toFloatArray()) {
                if (id != Math.rint(id) || Math.abs(id) > MAX_EXACT_ID) {
                    throw fail("golden: inputs of the int32 graph input must be integers within +-" + MAX_EXACT_ID
                            + " (stored as F32)");
                }
            }
        }
        tensor(outputsName, DType.F32, withBatch(count, output.sampleShape()), "golden outputs");
        return new Golden(inputsName, outputsName, 0, (int) count);
    }

    private Golden checkGeneratedGolden(Object spec, ValueInfo input, ValueInfo output)
            throws HpkFormatException {
        String generator = string(spec, "generator", "golden");
        if (!Golden.GENERATOR.equals(generator)) {
            throw fail("golden: unknown input generator " + Json.repr(generator) + " (this reader knows '"
                    + Golden.GENERATOR + "')");
        }
        BigInteger seed = integer(spec, "seed", "golden");
        if (seed.signum() < 0 || seed.bitLength() > 32) {
            throw fail("golden: seed " + seed + " is not in [0, 2^32)");
        }
        BigInteger count = integer(spec, "count", "golden");
        long perSample = 1;
        for (int d : input.sampleShape()) {
            perSample *= d; // the graph's input size was bounded by the node checks
        }
        if (count.signum() < 1 || count.compareTo(BigInteger.valueOf(Golden.MAX_COUNT)) > 0
                || count.longValue() * perSample > Golden.MAX_VALUES) {
            throw fail("golden: " + count + " generated samples of " + perSample + " values exceed the limits (1.."
                    + Golden.MAX_COUNT + " samples, " + Golden.MAX_VALUES + " values in all)");
        }
        String outputsName = string(spec, "outputs", "golden");
        tensor(outputsName, DType.F32, withBatch(count.longValue(), output.sampleShape()), "golden outputs");
        return new Golden(null, outputsName, seed.longValue(), count.intValue());
    }

    private static long[] withBatch(long count, int[] sample) {
        long[] shape = new long[sample.length + 1];
        shape[0] = count;
        for (int i = 0; i < sample.length; i++) {
            shape[i + 1] = sample[i];
        }
        return shape;
    }

    private static String hex(byte[] bytes) {
        StringBuilder s = new StringBuilder(bytes.length * 2);
        for (byte b : bytes) {
            s.append(Character.forDigit((b >> 4) & 0xF, 16)).append(Character.forDigit(b & 0xF, 16));
        }
        return s.toString();
    }
}
