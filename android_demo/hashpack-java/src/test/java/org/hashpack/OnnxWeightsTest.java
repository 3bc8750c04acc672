package org.hashpack;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertSame;
import static org.junit.Assert.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.Test;

/**
 * OnnxWeights reads the external export's mapping from hand-built ModelProto bytes (the real files
 * are checked end to end by tests/test_onnx_external_java.py) and refuses hostile ones with an
 * HpkFormatException and nothing else.
 */
public class OnnxWeightsTest {
    private static final Model MODEL = load();

    private static Model load() {
        try {
            return new Model(HpkReader.read(new File(TestSupport.fixtures(), "lenet5.hpk")));
        } catch (HpkFormatException e) {
            throw new AssertionError(e);
        }
    }

    // ------------------------------------------------------------------ a tiny protobuf writer

    private static void varint(ByteArrayOutputStream out, long value) {
        while ((value & ~0x7fL) != 0) {
            out.write((int) ((value & 0x7f) | 0x80));
            value >>>= 7;
        }
        out.write((int) value);
    }

    private static void bytesField(ByteArrayOutputStream out, int field, byte[] value) {
        varint(out, (long) field << 3 | 2);
        varint(out, value.length);
        out.write(value, 0, value.length);
    }

    private static byte[] entry(String key, byte[] value) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        bytesField(out, 1, key.getBytes(StandardCharsets.UTF_8));
        bytesField(out, 2, value);
        return out.toByteArray();
    }

    /** ir_version, a stand-in graph, opset_import-like field, then the given metadata entries. */
    private static byte[] model(byte[]... entries) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        varint(out, 1 << 3);
        varint(out, 8);
        bytesField(out, 7, new byte[] {8, 1, 18, 3, 'a', 'b', 'c'});
        varint(out, 6 << 3 | 1); // a fixed64 and a fixed32 field: skipped
        out.write(new byte[8], 0, 8);
        varint(out, 9 << 3 | 5);
        out.write(new byte[4], 0, 4);
        for (byte[] e : entries) {
            bytesField(out, 14, e);
        }
        return out.toByteArray();
    }

    private static byte[] mapping(String json) {
        return model(entry("hashpack.weights", utf8("external")), entry(OnnxWeights.MAPPING_KEY, utf8(json)));
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static String document(String sha, String initializers) {
        return "{\"version\":1,\"hpk_sha256\":\"" + sha + "\",\"initializers\":" + initializers + "}";
    }

    private static String everyParam() {
        List<String> items = new ArrayList<>();
        for (Param p : MODEL.file().params().values()) {
            StringBuilder shape = new StringBuilder();
            for (int d : p.shape()) {
                shape.append(shape.length() == 0 ? "" : ",").append(d);
            }
            items.add("{\"name\":\"onnx/" + p.name() + "\",\"param\":\"" + p.name() + "\",\"shape\":[" + shape + "]}");
        }
        return "[" + String.join(",", items) + "]";
    }

    private static void refused(byte[] onnx, String... fragments) {
        TestSupport.assertFormatError(() -> OnnxWeights.initializers(onnx, "m.onnx", MODEL), fragments);
    }

    // ------------------------------------------------------------------ tests

    @Test
    public void givesEveryMappedParamsDecodedValues() throws HpkFormatException {
        Map<String, Tensor> weights = OnnxWeights.initializers(
                mapping(document(MODEL.file().sha256(), everyParam())), "m.onnx", MODEL);
        assertEquals(MODEL.file().params().size(), weights.size());
        assertTrue(weights.size() >= 10);
        for (Param p : MODEL.file().params().values()) {
            Tensor t = weights.get("onnx/" + p.name());
            assertSame(MODEL.weight(p.name()), t);
            assertArrayEquals(p.shape(), t.shape());
            long[] shape = OnnxWeights.longShape(t);
            for (int i = 0; i < shape.length; i++) {
                assertEquals(p.shape()[i], shape[i]);
            }
        }
        assertEquals(64, MODEL.file().sha256().length());
        // from the HpkFile alone: the same bits, decoded again
        Map<String, Tensor> fromFile = OnnxWeights.initializers(
                mapping(document(MODEL.file().sha256(), everyParam())), "m.onnx", MODEL.file());
        assertEquals(weights.keySet(), fromFile.keySet());
        for (Map.Entry<String, Tensor> e : weights.entrySet()) {
            assertArrayEquals(e.getValue().shape(), fromFile.get(e.getKey()).shape());
            assertArrayEquals(e.getValue().data(), fromFile.get(e.getKey()).data(), 0f);
        }
    }

    @Test
    public void aFileWithoutMappingNeedsNoInitializers() throws HpkFormatException {
        assertTrue(OnnxWeights.initializers(model(entry("hashpack.weights", utf8("compact"))), "m.onnx", MODEL)
                .isEmpty());
        assertTrue(OnnxWeights.initializers(new byte[0], "m.onnx", MODEL).isEmpty());
    }

    @Test
    public void refusesMalformedProtobuf() {
        refused(new byte[] {(byte) 0x80}, "m.onnx: not a valid ONNX file (truncated varint");
        refused(new byte[] {0x72, 0x05, 0x0a}, "field length 5 beyond the end");
        refused(new byte[] {0x0b}, "wire type 3");
        refused(new byte[] {0x00, 0x00}, "field number 0");
        refused(new byte[] {0x08, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff,
                (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x01}, "varint longer than");
        refused(new byte[] {0x72, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff,
                (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x01}, "beyond the end");
        refused(new byte[] {0x31, 0, 0, 0}, "truncated fixed-size field");
        refused(model(entry(OnnxWeights.MAPPING_KEY, new byte[] {(byte) 0xc3, 0x28})), "not UTF-8");
        String good = document(MODEL.file().sha256(), everyParam());
        refused(model(entry(OnnxWeights.MAPPING_KEY, utf8(good)), entry(OnnxWeights.MAPPING_KEY, utf8(good))),
                "holds 'hashpack.external' twice");
    }

    @Test
    public void refusesABadMapping() {
        String sha = MODEL.file().sha256();
        refused(mapping("{"), "m.onnx: hashpack.external is not valid JSON");
        refused(mapping("[]"), "not a version-1 mapping object");
        refused(mapping("{\"version\":2}"), "not a version-1 mapping object");
        refused(mapping(document("0123", everyParam())), "was exported from another .hpk than",
                "lenet5.hpk (hpk_sha256 differs)");
        refused(mapping(document(sha, "{}")), "initializers is not an array");
        refused(mapping(document(sha, "[1]")), "initializers[0]: not an object with a non-empty 'name'");
        refused(mapping(document(sha, "[{\"name\":\"\",\"param\":\"x\"}]")), "non-empty 'name'");
        refused(mapping(document(sha, "[{\"name\":\"w\",\"param\":\"nope\",\"shape\":[1]}]")),
                "initializers[0]: 'param' names no param of");
        Param first = MODEL.file().params().values().iterator().next();
        String wrongShape = "[{\"name\":\"w\",\"param\":\"" + first.name() + "\",\"shape\":[1]}]";
        refused(mapping(document(sha, wrongShape)), "initializers[0]: shape [1] is not param '" + first.name());
        int d0 = first.shape()[0];
        String floatShape = "[{\"name\":\"w\",\"param\":\"" + first.name() + "\",\"shape\":[" + d0 + ".0]}]";
        refused(mapping(document(sha, floatShape)), "shape");
        String all = everyParam();
        String twice = all.substring(0, all.length() - 1) + "," + all.substring(1);
        refused(mapping(document(sha, twice)), "listed twice");
    }

    @Test
    public void randomDamageIsAFormatErrorOrAccepted() {
        byte[] good = mapping(document(MODEL.file().sha256(), everyParam()));
        Random rng = new Random(18);
        for (int i = 0; i < 3000; i++) {
            byte[] bad = java.util.Arrays.copyOf(good, rng.nextInt(3) == 0 ? rng.nextInt(good.length) : good.length);
            for (int k = 0, n = 1 + rng.nextInt(4); k < n && bad.length > 0; k++) {
                bad[rng.nextInt(bad.length)] = (byte) rng.nextInt(256);
            }
            try {
                Map<String, Tensor> weights = OnnxWeights.initializers(bad, "m.onnx", MODEL);
                for (Tensor t : weights.values()) {
                    assertTrue(t != null);
                }
            } catch (HpkFormatException e) {
                assertTrue(e.getMessage(), e.getMessage().startsWith("m.onnx: "));
            }
        }
    }
}
