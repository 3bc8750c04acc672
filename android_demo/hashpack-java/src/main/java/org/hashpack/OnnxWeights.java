package org.hashpack;

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The weights of an ONNX file exported with {@code hashpack export --weights external}, for ONNX
 * Runtime's {@code SessionOptions.addExternalInitializers}.
 *
 * <p>Such a file is the expanded graph with every param declared as an external-data initializer
 * and no weight values; its {@code metadata_props} entry {@value #MAPPING_KEY} says which .hpk param
 * each initializer is (docs/ONNX.md, "The external mode"):
 *
 * <pre>
 * {"version": 1, "hpk_sha256": "&lt;the .hpk's hashpack.sha256&gt;",
 *  "initializers": [{"name": "fc1.weight", "param": "fc1.weight", "shape": [300, 784]}, ...]}
 * </pre>
 *
 * Each initializer's values are the param's decoded float32 values, row-major, in the param's shape
 * (no view or transposition), as {@link Model#weight} gives them. ONNX Runtime then loads the graph like the
 * expanded export, without folding any hashing, and the app needs no protobuf library: this class
 * reads only the top-level {@code metadata_props} field of the file (a protobuf scan that skips
 * everything else by length).
 *
 * <pre>{@code
 * Map<String, Tensor> weights = OnnxWeights.initializers(onnxBytes, "model.onnx", hpkFile);
 * Map<String, OnnxTensorLike> tensors = new HashMap<>();
 * for (Map.Entry<String, Tensor> e : weights.entrySet())
 *     tensors.put(e.getKey(), OnnxTensor.createTensor(env, FloatBuffer.wrap(e.getValue().data()),
 *             OnnxWeights.longShape(e.getValue())));
 * options.addExternalInitializers(tensors);  // ORT copies them at session creation
 * }</pre>
 *
 * <p>The .onnx file is untrusted: a malformed protobuf, a missing, repeated or malformed mapping, an
 * unknown param, a wrong shape, a repeated name or param, or a file exported from another .hpk
 * (its {@code hpk_sha256} is not {@link HpkFile#sha256()}) is an {@link HpkFormatException}
 * {@code "<source>: <problem>"}. Nothing is allocated beyond the mapping's own text.
 */
public final class OnnxWeights {
    /** The {@code metadata_props} key of the mapping. */
    public static final String MAPPING_KEY = "hashpack.external";
    static final BigInteger MAPPING_VERSION = BigInteger.ONE;

    // ModelProto.metadata_props (repeated StringStringEntryProto {key = 1, value = 2}), onnx.proto3
    private static final int METADATA_PROPS_FIELD = 14;
    private static final int WIRE_VARINT = 0;
    private static final int WIRE_I64 = 1;
    private static final int WIRE_LEN = 2;
    private static final int WIRE_I32 = 5;

    private OnnxWeights() {}

    /**
     * Initializer name to value, in the mapping's order, for the ONNX file {@code onnx} exported from
     * {@code file} with {@code --weights external}: each listed param decoded through its scheme, as
     * {@link Model} decodes it (the same bits), on this thread; nothing else of the .hpk is decoded.
     * An empty map if the file has no mapping (a compact, inline or expanded export, which ONNX
     * Runtime runs alone).
     *
     * @throws HpkFormatException naming {@code source} if the file or its mapping is malformed or
     *     does not belong to this .hpk
     */
    public static Map<String, Tensor> initializers(byte[] onnx, String source, HpkFile file)
            throws HpkFormatException {
        Map<String, Tensor> weights = new LinkedHashMap<>();
        for (Map.Entry<String, String> entry : mapping(onnx, source, file).entrySet()) {
            Param param = file.params().get(entry.getValue());
            weights.put(entry.getKey(), new Tensor(param.shape(), Schemes.get(param.scheme()).decode(param, file)));
        }
        return Collections.unmodifiableMap(weights);
    }

    /**
     * As {@link #initializers(byte[], String, HpkFile)}, the values taken from a {@link Model} of the
     * same .hpk (its decoded params, shared: do not modify) instead of decoded again.
     */
    public static Map<String, Tensor> initializers(byte[] onnx, String source, Model model)
            throws HpkFormatException {
        Map<String, Tensor> weights = new LinkedHashMap<>();
        for (Map.Entry<String, String> entry : mapping(onnx, source, model.file()).entrySet()) {
            weights.put(entry.getKey(), model.weight(entry.getValue()));
        }
        return Collections.unmodifiableMap(weights);
    }

    /** The checked mapping of {@code onnx}, initializer name to param name (empty without one). */
    static Map<String, String> mapping(byte[] onnx, String source, HpkFile file) throws HpkFormatException {
        String text = metadataValue(onnx, source, MAPPING_KEY);
        return text == null ? Collections.<String, String>emptyMap() : mapping(text, source, file);
    }

    /** A tensor's shape as the {@code long[]} ONNX Runtime's {@code OnnxTensor.createTensor} takes. */
    public static long[] longShape(Tensor tensor) {
        int[] shape = tensor.shape();
        long[] result = new long[shape.length];
        for (int i = 0; i < shape.length; i++) {
            result[i] = shape[i];
        }
        return result;
    }

    /** Initializer name to param name, checked against {@code file} (the rules of the class comment). */
    static Map<String, String> mapping(String text, String source, HpkFile file) throws HpkFormatException {
        Object parsed;
        try {
            parsed = Json.parse(text);
        } catch (Json.SyntaxException e) {
            throw new HpkFormatException(source, MAPPING_KEY + " is not valid JSON (" + e.getMessage() + ")");
        }
        if (!(parsed instanceof Map) || !MAPPING_VERSION.equals(((Map<?, ?>) parsed).get("version"))) {
            throw new HpkFormatException(source, MAPPING_KEY + " is not a version-1 mapping object");
        }
        Map<?, ?> document = (Map<?, ?>) parsed;
        if (!file.sha256().equals(document.get("hpk_sha256"))) {
            throw new HpkFormatException(source, "was exported from another .hpk than " + file.source()
                    + " (hpk_sha256 differs): export this .hpk with --weights external");
        }
        Object entries = document.get("initializers");
        if (!(entries instanceof List)) {
            throw new HpkFormatException(source, MAPPING_KEY + ".initializers is not an array");
        }
        Map<String, String> mapping = new LinkedHashMap<>();
        Set<String> params = new HashSet<>();
        List<?> list = (List<?>) entries;
        for (int i = 0; i < list.size(); i++) {
            String where = MAPPING_KEY + ".initializers[" + i + "]";
            Object item = list.get(i);
            Object name = item instanceof Map ? ((Map<?, ?>) item).get("name") : null;
            if (!(name instanceof String) || ((String) name).isEmpty()) {
                throw new HpkFormatException(source, where + ": not an object with a non-empty 'name'");
            }
            Object paramName = ((Map<?, ?>) item).get("param");
            Param param = paramName instanceof String ? file.params().get(paramName) : null;
            if (param == null) {
                throw new HpkFormatException(source, where + ": 'param' names no param of " + file.source());
            }
            Object shape = ((Map<?, ?>) item).get("shape");
            if (!sameShape(shape, param.shape())) {
                throw new HpkFormatException(source, where + ": shape " + Json.repr(shape) + " is not param '"
                        + param.name() + "''s " + java.util.Arrays.toString(param.shape()));
            }
            if (mapping.containsKey(name) || !params.add(param.name())) {
                throw new HpkFormatException(source, where + ": initializer or param listed twice");
            }
            mapping.put((String) name, param.name());
        }
        return mapping;
    }

    private static boolean sameShape(Object shape, int[] expected) {
        if (!(shape instanceof List) || ((List<?>) shape).size() != expected.length) {
            return false;
        }
        for (int i = 0; i < expected.length; i++) {
            if (!BigInteger.valueOf(expected[i]).equals(((List<?>) shape).get(i))) {
                return false;
            }
        }
        return true;
    }

    // ------------------------------------------------------------------ protobuf: metadata_props

    /**
     * The value of {@code metadata_props} entry {@code key} of the serialized ModelProto {@code onnx},
     * or null if there is none. Reads the top level only; every other field is skipped by its length.
     */
    static String metadataValue(byte[] onnx, String source, String key) throws HpkFormatException {
        Wire top = new Wire(onnx, 0, onnx.length, source);
        String found = null;
        while (top.more()) {
            long tag = top.varint();
            int wire = (int) (tag & 7);
            if (tag >>> 3 == METADATA_PROPS_FIELD && wire == WIRE_LEN) {
                int end = top.length();
                String[] entry = entry(new Wire(onnx, top.pos, end, source));
                top.pos = end;
                if (key.equals(entry[0])) {
                    if (found != null) {
                        throw new HpkFormatException(source, "metadata_props holds '" + key + "' twice");
                    }
                    found = entry[1] == null ? "" : entry[1];
                }
            } else {
                top.skip(tag);
            }
        }
        return found;
    }

    /** A StringStringEntryProto: {key, value} (null when absent). */
    private static String[] entry(Wire w) throws HpkFormatException {
        String[] entry = new String[2];
        while (w.more()) {
            long tag = w.varint();
            long field = tag >>> 3;
            if ((field == 1 || field == 2) && (tag & 7) == WIRE_LEN) {
                int end = w.length();
                entry[(int) field - 1] = w.utf8(end);
                w.pos = end;
            } else {
                w.skip(tag);
            }
        }
        return entry;
    }

    /** A bounded cursor over protobuf wire format; every read is checked against {@code end}. */
    private static final class Wire {
        final byte[] bytes;
        final int end;
        final String source;
        int pos;

        Wire(byte[] bytes, int pos, int end, String source) {
            this.bytes = bytes;
            this.pos = pos;
            this.end = end;
            this.source = source;
        }

        boolean more() {
            return pos < end;
        }

        HpkFormatException bad(String what) {
            return new HpkFormatException(source, "not a valid ONNX file (" + what + " at byte " + pos
                    + "): export it with hashpack export --format onnx");
        }

        long varint() throws HpkFormatException {
            long value = 0;
            for (int shift = 0; shift < 64; shift += 7) {
                if (pos >= end) {
                    throw bad("truncated varint");
                }
                int b = bytes[pos++];
                if (shift == 63 && (b & 0xfe) != 0) {
                    throw bad("varint longer than 64 bits");
                }
                value |= (long) (b & 0x7f) << shift;
                if ((b & 0x80) == 0) {
                    return value;
                }
            }
            throw bad("varint longer than 10 bytes");
        }

        /** Reads a length prefix; returns the end offset of the field it announces. */
        int length() throws HpkFormatException {
            long length = varint();
            if (length < 0 || length > end - pos) {
                throw bad("field length " + Long.toUnsignedString(length) + " beyond the end");
            }
            return pos + (int) length;
        }

        void skip(long tag) throws HpkFormatException {
            if (tag >>> 3 == 0) {
                throw bad("field number 0");
            }
            int wire = (int) (tag & 7);
            if (wire == WIRE_VARINT) {
                varint();
            } else if (wire == WIRE_LEN) {
                pos = length();
            } else if (wire == WIRE_I64 || wire == WIRE_I32) {
                int size = wire == WIRE_I64 ? 8 : 4;
                if (size > end - pos) {
                    throw bad("truncated fixed-size field");
                }
                pos += size;
            } else {
                throw bad("wire type " + wire);
            }
        }

        String utf8(int stop) throws HpkFormatException {
            try {
                return StandardCharsets.UTF_8.newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT)
                        .decode(ByteBuffer.wrap(bytes, pos, stop - pos))
                        .toString();
            } catch (CharacterCodingException e) {
                throw bad("metadata string that is not UTF-8");
            }
        }
    }
}
