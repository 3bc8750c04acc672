package org.hashpack;

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * An editable .hpk for tests: the header's tensor table, the parsed metadata document and the data
 * buffer, re-serialised (with a fresh checksum unless told otherwise) by {@link #bytes}. Built from
 * an existing file ({@link #parse}) or from scratch ({@link #builder}).
 */
final class TestHpk {
    Map<String, Object> table; // tensor name -> {dtype, shape, data_offsets}
    Map<String, Object> meta; // the hashpack metadata document
    byte[] data;
    /** Extra __metadata__ entries (or replacements) and the checksum override, if set. */
    final Map<String, Object> extraMetadata = new LinkedHashMap<>();
    String checksumOverride;

    @SuppressWarnings("unchecked")
    static TestHpk parse(byte[] file) {
        try {
            ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
            int n = (int) b.getLong(0);
            Map<String, Object> header = (Map<String, Object>) Json.parse(
                    new String(file, 8, n, StandardCharsets.UTF_8));
            Map<String, Object> metadata = (Map<String, Object>) header.remove("__metadata__");
            TestHpk hpk = new TestHpk();
            hpk.table = header;
            hpk.meta = (Map<String, Object>) Json.parse((String) metadata.get("hashpack"));
            hpk.data = java.util.Arrays.copyOfRange(file, 8 + n, file.length);
            return hpk;
        } catch (Json.SyntaxException e) {
            throw new AssertionError(e);
        }
    }

    /** The file bytes: length prefix, space-padded header, data; the checksum is recomputed. */
    byte[] bytes() {
        return bytes(Json.write(meta));
    }

    byte[] bytes(String metaText) {
        Map<String, Object> header = new LinkedHashMap<>();
        Map<String, Object> metadata = new LinkedHashMap<>();
        metadata.put("hashpack", metaText);
        metadata.put("hashpack.sha256", checksumOverride != null ? checksumOverride : sha256(metaText, data));
        metadata.putAll(extraMetadata);
        header.put("__metadata__", metadata);
        header.putAll(table);
        return assemble(Json.write(header).getBytes(StandardCharsets.UTF_8), data);
    }

    static byte[] assemble(byte[] headerJson, byte[] data) {
        int padded = headerJson.length + ((8 - (8 + headerJson.length) % 8) % 8);
        ByteBuffer out = ByteBuffer.allocate(8 + padded + data.length).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(padded);
        out.put(headerJson);
        for (int i = headerJson.length; i < padded; i++) {
            out.put((byte) ' ');
        }
        out.put(data);
        return out.array();
    }

    static String sha256(String metaText, byte[] data) {
        try {
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            digest.update(metaText.getBytes(StandardCharsets.UTF_8));
            digest.update(data);
            StringBuilder s = new StringBuilder();
            for (byte x : digest.digest()) {
                s.append(String.format("%02x", x & 0xFF));
            }
            return s.toString();
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    HpkFile read() throws HpkFormatException {
        return HpkReader.parse(bytes(), "test.hpk");
    }

    @SuppressWarnings("unchecked")
    Map<String, Object> section(String key) {
        return (Map<String, Object>) meta.get(key);
    }

    @SuppressWarnings("unchecked")
    Map<String, Object> param(String name) {
        return (Map<String, Object>) section("params").get(name);
    }

    @SuppressWarnings("unchecked")
    Map<String, Object> space(String name) {
        return (Map<String, Object>) section("spaces").get(name);
    }

    @SuppressWarnings("unchecked")
    List<Object> nodes() {
        return (List<Object>) meta.get("nodes");
    }

    @SuppressWarnings("unchecked")
    Map<String, Object> node(int index) {
        return (Map<String, Object>) nodes().get(index);
    }

    @SuppressWarnings("unchecked")
    Map<String, Object> attrs(int nodeIndex) {
        return (Map<String, Object>) node(nodeIndex).get("attrs");
    }

    @SuppressWarnings("unchecked")
    Map<String, Object> entry(String tensor) {
        return (Map<String, Object>) table.get(tensor);
    }

    /** Replaces tensor {@code name}'s bytes (relaying out the data buffer in name order). */
    void setTensor(String name, String dtype, long[] shape, byte[] raw) {
        Map<String, byte[]> contents = contents();
        contents.put(name, raw);
        Map<String, Object> dtypes = new LinkedHashMap<>();
        Map<String, Object> shapes = new LinkedHashMap<>();
        for (String t : contents.keySet()) {
            Map<String, Object> e = entry(t);
            dtypes.put(t, e == null ? null : e.get("dtype"));
            shapes.put(t, e == null ? null : e.get("shape"));
        }
        List<Object> s = new ArrayList<>();
        for (long d : shape) {
            s.add(BigInteger.valueOf(d));
        }
        dtypes.put(name, dtype);
        shapes.put(name, s);
        relayout(contents, dtypes, shapes);
    }

    /** Removes a tensor from the table and the data buffer. */
    void removeTensor(String name) {
        Map<String, byte[]> contents = contents();
        contents.remove(name);
        Map<String, Object> dtypes = new LinkedHashMap<>();
        Map<String, Object> shapes = new LinkedHashMap<>();
        for (String t : contents.keySet()) {
            dtypes.put(t, entry(t).get("dtype"));
            shapes.put(t, entry(t).get("shape"));
        }
        relayout(contents, dtypes, shapes);
    }

    /** The raw bytes of a tensor. */
    byte[] tensorBytes(String name) {
        List<?> offsets = (List<?>) entry(name).get("data_offsets");
        int begin = ((BigInteger) offsets.get(0)).intValue();
        int end = ((BigInteger) offsets.get(1)).intValue();
        return java.util.Arrays.copyOfRange(data, begin, end);
    }

    private Map<String, byte[]> contents() {
        Map<String, byte[]> contents = new TreeMap<>();
        for (String t : table.keySet()) {
            contents.put(t, tensorBytes(t));
        }
        return contents;
    }

    private void relayout(Map<String, byte[]> contents, Map<String, Object> dtypes, Map<String, Object> shapes) {
        table = new LinkedHashMap<>();
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (Map.Entry<String, byte[]> e : contents.entrySet()) {
            int begin = out.size();
            out.write(e.getValue(), 0, e.getValue().length);
            table.put(e.getKey(), TestSupport.obj("dtype", dtypes.get(e.getKey()), "shape", shapes.get(e.getKey()),
                    "data_offsets", TestSupport.ints(begin, out.size())));
        }
        data = out.toByteArray();
    }

    static byte[] f32(float... values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            b.putFloat(v);
        }
        return b.array();
    }

    static byte[] f16(short... values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (short v : values) {
            b.putShort(v);
        }
        return b.array();
    }

    // ---------------------------------------------------------------------------- from scratch

    /** Starts a file with graph input {@code input} of sample shape {@code inputShape}. */
    static Builder builder(int... inputShape) {
        return new Builder(inputShape);
    }

    /** Builds a small file from scratch: dense and hashed params, spaces, nodes. */
    static final class Builder {
        private final TestHpk hpk = new TestHpk();
        private final Map<String, byte[]> contents = new TreeMap<>();
        private final Map<String, Object> dtypes = new LinkedHashMap<>();
        private final Map<String, Object> shapes = new LinkedHashMap<>();

        Builder(int... inputShape) {
            hpk.table = new LinkedHashMap<>();
            hpk.data = new byte[0];
            hpk.meta = TestSupport.obj("format", "hashpack", "version", 1, "hash", "hp32", "producer", "TestHpk",
                    "inputs", TestSupport.list(TestSupport.obj("name", "x", "shape", batchShape(inputShape))),
                    "outputs", TestSupport.list(), "spaces", new LinkedHashMap<String, Object>(),
                    "params", new LinkedHashMap<String, Object>(), "nodes", TestSupport.list());
        }

        static List<Object> batchShape(int... sample) {
            List<Object> s = TestSupport.list((Object) null);
            s.addAll(TestSupport.ints(sample));
            return s;
        }

        private void tensor(String name, String dtype, int[] shape, byte[] raw) {
            contents.put(name, raw);
            dtypes.put(name, dtype);
            shapes.put(name, TestSupport.ints(shape));
        }

        /** Makes the graph input int32 token ids ({@code inputs[0].dtype}, or any other dtype string). */
        @SuppressWarnings("unchecked")
        Builder dtype(String dtype) {
            ((Map<String, Object>) ((List<?>) hpk.meta.get("inputs")).get(0)).put("dtype", dtype);
            return this;
        }

        Builder dense(String name, int[] shape, float... values) {
            tensor("params/" + name, "F32", shape, f32(values));
            hpk.section("params").put(name, TestSupport.obj("scheme", "dense", "shape", TestSupport.ints(shape),
                    "tensor", "params/" + name));
            return this;
        }

        Builder space(String name, float... values) {
            tensor("spaces/" + name, "F32", new int[] {values.length}, f32(values));
            hpk.section("spaces").put(name, TestSupport.obj("size", values.length, "dtype", "float32",
                    "tensor", "spaces/" + name));
            return this;
        }

        /** A float16 space from raw half bit patterns. */
        Builder spaceF16(String name, short... bits) {
            tensor("spaces/" + name, "F16", new int[] {bits.length}, f16(bits));
            hpk.section("spaces").put(name, TestSupport.obj("size", bits.length, "dtype", "float16",
                    "tensor", "spaces/" + name));
            return this;
        }

        /** An int8 space: codes and a scale (bucket j is {@code codes[j] * scale}). */
        Builder spaceI8(String name, double scale, byte... codes) {
            tensor("spaces/" + name, "I8", new int[] {codes.length}, codes.clone());
            hpk.section("spaces").put(name, TestSupport.obj("size", codes.length, "dtype", "int8",
                    "tensor", "spaces/" + name, "scale", scale));
            return this;
        }

        /** A param of any scheme: {@code fields} are its scheme's fields (besides scheme and shape). */
        Builder param(String name, String scheme, int[] shape, Map<String, Object> fields) {
            Map<String, Object> spec = TestSupport.obj("scheme", scheme, "shape", TestSupport.ints(shape));
            spec.putAll(fields);
            hpk.section("params").put(name, spec);
            return this;
        }

        Builder hashed(String name, String space, long seed, int... shape) {
            hpk.section("params").put(name, TestSupport.obj("scheme", "hashed", "shape", TestSupport.ints(shape),
                    "space", space, "seed", seed));
            return this;
        }

        /** A node with one output named after it. {@code params}/{@code attrs}: JSON objects. */
        Builder node(String op, String name, List<Object> inputs, Map<String, Object> params,
                Map<String, Object> attrs) {
            hpk.nodes().add(TestSupport.obj("op", op, "name", name, "inputs", inputs,
                    "outputs", TestSupport.list(name), "params", params, "attrs", attrs));
            return this;
        }

        Builder node(String op, String name, String input) {
            return node(op, name, TestSupport.list(input), TestSupport.obj(), TestSupport.obj());
        }

        /** Golden tensors: full shapes (count first) and values. */
        Builder golden(int[] inputShape, float[] inputs, int[] outputShape, float[] outputs) {
            tensor("golden/inputs", "F32", inputShape, f32(inputs));
            tensor("golden/outputs", "F32", outputShape, f32(outputs));
            hpk.meta.put("golden", TestSupport.obj("inputs", "golden/inputs", "outputs", "golden/outputs"));
            return this;
        }

        /** Finishes with graph output {@code output} of sample shape {@code outputShape}. */
        TestHpk output(String output, int... outputShape) {
            hpk.meta.put("outputs", TestSupport.list(TestSupport.obj("name", output, "shape", batchShape(outputShape))));
            hpk.table = new LinkedHashMap<>();
            hpk.relayout(contents, dtypes, shapes);
            return hpk;
        }
    }
}
