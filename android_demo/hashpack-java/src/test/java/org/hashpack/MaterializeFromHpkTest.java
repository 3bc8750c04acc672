package org.hashpack;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.Test;

/**
 * Materializer.materializeFromHpk rebuilds, byte for byte, what Python's materialize_from_hpk makes
 * of every scheme × architecture case (tests/java_fixtures.py, "from_hpk"): from the numpy
 * runtime's params, and from hashpack-java's own decode wherever the schemes are exact. Hostile
 * recipes, slots and params give IllegalArgumentException with a message, nothing else.
 */
public class MaterializeFromHpkTest {
    private static Map<?, ?> manifest() {
        return (Map<?, ?>) TestSupport.readJson(new File(TestSupport.fixtures(), "manifest.json")).get("from_hpk");
    }

    private static List<?> cases() {
        return (List<?>) manifest().get("cases");
    }

    private static byte[] bytes(Object name) {
        return TestSupport.readBytes(new File(TestSupport.fixtures(), (String) name));
    }

    private static Map<?, ?> find(String id) {
        for (Object item : cases()) {
            if (id.equals(((Map<?, ?>) item).get("id"))) {
                return (Map<?, ?>) item;
            }
        }
        throw new AssertionError("no from_hpk fixture " + id);
    }

    /** The numpy runtime's decoded params the case's recipes name. */
    private static Map<String, Tensor> numpyParams(Map<?, ?> c) {
        ByteBuffer all = ByteBuffer.wrap(bytes(c.get("params_file"))).order(ByteOrder.LITTLE_ENDIAN);
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Object item : (List<?>) c.get("params")) {
            Map<?, ?> p = (Map<?, ?>) item;
            float[] values = new float[((Number) p.get("count")).intValue()];
            all.position(4 * ((Number) p.get("offset")).intValue());
            all.asFloatBuffer().get(values);
            out.put((String) p.get("name"), new Tensor(TestSupport.toInts(p.get("shape")), values));
        }
        return out;
    }

    private static HpkFile hpk(Map<?, ?> c) throws HpkFormatException {
        return HpkReader.read(new File(TestSupport.fixtures(), (String) c.get("hpk")));
    }

    private static Map<String, Tensor> javaParams(Map<?, ?> c) throws HpkFormatException {
        return Model.decodeParams(hpk(c), 2);
    }

    @Test
    public void rebuildsPythonsBytesForEveryCase() throws Exception {
        int compared = 0;
        int exact = 0;
        int folds = 0;
        int views = 0;
        for (Object item : cases()) {
            Map<?, ?> c = (Map<?, ?>) item;
            String id = (String) c.get("id");
            byte[] once = bytes(c.get("once"));
            if (c.get("expected") == null) { // dense: nothing decompressed, so no template
                Map<String, Tensor> params = javaParams(c);
                expectRejected(id, () -> Materializer.materializeFromHpk(once, params), "no hashpack materialize template");
                continue;
            }
            byte[] expected = bytes(c.get("expected"));
            assertArrayEquals(id + ": from the numpy runtime's params", expected,
                    Materializer.materializeFromHpk(once, numpyParams(c)));
            HpkFile hpk = hpk(c);
            byte[] fromModel = Materializer.materializeFromHpk(once, new Model(hpk));
            assertArrayEquals(id + ": Model and decodeParams agree", fromModel,
                    Materializer.materializeFromHpk(once, javaParams(c)));
            for (int threads = 1; threads <= 3; threads += 2) {
                assertArrayEquals(id + ": decoded while writing, " + threads + " threads", fromModel,
                        Materializer.materializeFromHpk(once, hpk, threads));
            }
            if (Boolean.TRUE.equals(c.get("exact"))) {
                assertArrayEquals(id + ": from hashpack-java's decode", expected, fromModel);
                exact++;
            } else {
                assertCloseWeights(id, once, expected, fromModel);
            }
            compared++;
            folds += ((Number) c.get("folds")).intValue();
            views += ((Number) c.get("views")).intValue();
        }
        assertTrue("only " + compared + " cases", compared >= 20);
        assertTrue("only " + exact + " exact cases", exact >= 10);
        assertTrue("BatchNorm folds and views must be covered", folds >= 20 && views >= 20);
    }

    /** fresh / funhash with g: the template bytes equal, each weight within float32 rounding of the dot products. */
    private static void assertCloseWeights(String id, byte[] once, byte[] expected, byte[] got) {
        assertEquals(id, expected.length, got.length);
        int templateLength = Materializer.readMetadata(once).get(Materializer.TEMPLATE_METADATA).length;
        assertArrayEquals(id + ": template", Arrays.copyOf(expected, templateLength), Arrays.copyOf(got, templateLength));
        ByteBuffer want = ByteBuffer.wrap(expected).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer have = ByteBuffer.wrap(got).order(ByteOrder.LITTLE_ENDIAN);
        for (Materializer.Slot slot : Materializer.slots(once)) {
            float max = 0;
            for (int at = slot.offset; at < slot.offset + slot.size; at += 4) {
                max = Math.max(max, Math.abs(want.getFloat(at)));
            }
            for (int at = slot.offset; at < slot.offset + slot.size; at += 4) {
                float a = want.getFloat(at);
                float b = have.getFloat(at);
                assertTrue(id + " " + slot.variable + " at " + at + ": " + a + " vs " + b, Math.abs(a - b) <= 1e-4f * max);
            }
        }
    }

    /** Damaged slot tables (tests/java_fixtures.py writes them; Python refuses each too). */
    @Test
    public void hostileRecipesAndSlotsAreRejected() throws HpkFormatException {
        Map<String, String> expected = new HashMap<>();
        expected.put("slots-not-a-list", "not a JSON list");
        expected.put("no-recipe", "no recipe");
        expected.put("recipe-not-an-object", "no recipe");
        expected.put("param-unknown", "no decoded param no.such.param");
        expected.put("param-not-a-name", "param is not a name");
        expected.put("perm-not-a-permutation", "is not a permutation");
        expected.put("perm-wrong-length", "is not a list of 4 integers");
        expected.put("perm-not-integers", "non-negative integers");
        expected.put("rows-past-the-end", "do not fit param");
        expected.put("rows-reversed", "do not fit param");
        expected.put("rows-not-a-pair", "is not a list of 2 integers");
        expected.put("scale-no-such-subgraph", "no such subgraph");
        expected.put("scale-no-such-tensor", "no such tensor");
        expected.put("scale-not-a-constant", "is not a float32 constant");
        expected.put("scale-not-a-pair", "is not a list of 2 integers");
        expected.put("scale-does-not-fit", "does not fit the weight");
        expected.put("shift-does-not-fit", "does not fit the weight");
        expected.put("size-too-small", "its slot has");
        expected.put("size-huge", "bad slot");
        expected.put("offset-in-template", "lies outside template");
        expected.put("offset-huge", "bad slot");
        List<?> hostile = (List<?>) manifest().get("hostile");
        assertEquals(expected.size(), hostile.size());
        for (Object item : hostile) {
            Map<?, ?> h = (Map<?, ?>) item;
            String name = (String) h.get("name");
            assertTrue("unknown hostile case " + name, expected.containsKey(name));
            Map<String, Tensor> params = numpyParams(find((String) h.get("case")));
            HpkFile hpk = hpk(find((String) h.get("case")));
            byte[] once = bytes(h.get("once"));
            expectRejected(name, () -> Materializer.materializeFromHpk(once, params), expected.get(name));
            expectRejected(name, () -> Materializer.materializeFromHpk(once, hpk, 2), expected.get(name));
        }
    }

    /** Overlapping slots (Python writes them in order; here they would race): refused before any write. */
    @Test
    public void overlappingSlotsAreRejected() throws HpkFormatException {
        Map<?, ?> c = find("hashed-resnet20");
        byte[] once = bytes(c.get("once"));
        List<Materializer.Slot> slots = Materializer.slots(once);
        byte[] from = ("\"offset\":" + slots.get(1).offset + ",").getBytes(java.nio.charset.StandardCharsets.UTF_8);
        byte[] to = ("\"offset\":" + slots.get(0).offset + ",").getBytes(java.nio.charset.StandardCharsets.UTF_8);
        assertEquals(from.length, to.length); // an edit in place: the flatbuffer stays valid
        byte[] damaged = once.clone();
        int at = indexOf(damaged, from);
        assertTrue(at > 0 && indexOf(Arrays.copyOfRange(damaged, at + 1, damaged.length), from) < 0);
        System.arraycopy(to, 0, damaged, at, to.length);
        Map<String, Tensor> params = numpyParams(c);
        expectRejected("overlap", () -> Materializer.materializeFromHpk(damaged, params), "overlap");
        HpkFile hpk = hpk(c);
        expectRejected("overlap", () -> Materializer.materializeFromHpk(damaged, hpk, 2), "overlap");
    }

    private static int indexOf(byte[] data, byte[] part) {
        outer:
        for (int i = 0; i + part.length <= data.length; i++) {
            for (int k = 0; k < part.length; k++) {
                if (data[i + k] != part[k]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    /** What the demo app's LiteRtEngine decides on: recipes present, or LiteRT's materialize() instead. */
    @Test
    public void hasRecipesTellsWhichPathApplies() {
        assertTrue(Materializer.hasRecipes(bytes(find("hashed-resnet20").get("once"))));
        assertTrue(Materializer.hasRecipes(bytes(find("hashed-grouped").get("once"))));
        assertFalse(Materializer.hasRecipes(bytes(find("dense-mlp").get("once")))); // no template at all
        assertFalse(Materializer.hasRecipes(bytes("materialize.plain.tflite")));
        assertFalse(Materializer.hasRecipes(bytes("from_hpk/hostile-no-recipe.tflite"))); // an older export
        expectRejected("not a .tflite", () -> Materializer.hasRecipes(new byte[] {1, 2, 3}), "not a valid .tflite");
    }

    @Test
    public void paramsThatDoNotFitAreRejected() {
        Map<?, ?> c = find("hashed-resnet20");
        byte[] once = bytes(c.get("once"));
        expectRejected("no params", () -> Materializer.materializeFromHpk(once, new HashMap<String, Tensor>()),
                "no decoded param");
        String conv = "stem.0.weight"; // viewed OHWI, BatchNorm scale folded in
        String fc = "fc.weight"; // identity view
        Map<String, Tensor> params = numpyParams(c);
        assertTrue(params.containsKey(conv) && params.containsKey(fc));
        Map<String, Tensor> flat = new HashMap<>(params);
        flat.put(conv, new Tensor(new int[] {params.get(conv).data().length}, params.get(conv).data()));
        expectRejected("rank 1 conv", () -> Materializer.materializeFromHpk(once, flat), "is not a list of 1 integers");
        Map<String, Tensor> wider = new HashMap<>(params);
        int[] shape = params.get(conv).shape();
        shape[1] += 1; // one more input channel: the scale still fits, the slot does not
        wider.put(conv, new Tensor(shape, new float[TestSupport.numel(shape)]));
        expectRejected("wider conv", () -> Materializer.materializeFromHpk(once, wider), "its slot has");
        Map<String, Tensor> narrow = new HashMap<>(params);
        int[] fewer = params.get(conv).shape();
        fewer[0] -= 1; // one output channel less: the BatchNorm scale no longer fits
        narrow.put(conv, new Tensor(fewer, new float[TestSupport.numel(fewer)]));
        expectRejected("narrower conv", () -> Materializer.materializeFromHpk(once, narrow), "does not fit the weight");
        Map<String, Tensor> longer = new HashMap<>(params);
        longer.put(fc, new Tensor(new int[] {params.get(fc).data().length + 1}, new float[params.get(fc).data().length + 1]));
        expectRejected("longer fc", () -> Materializer.materializeFromHpk(once, longer), "its slot has");
        Map<String, Tensor> huge = new HashMap<>(params); // a 64 MB param: the slot, not the param, bounds the output
        huge.put(fc, new Tensor(new int[] {1 << 24}, new float[1 << 24]));
        expectRejected("huge fc", () -> Materializer.materializeFromHpk(once, huge), "its slot has");
        expectRejected("plain file", () -> Materializer.materializeFromHpk(bytes("materialize.plain.tflite"), params),
                "no hashpack materialize template");
    }

    @Test
    public void damagedFilesGiveIllegalArgumentExceptionOnly() throws HpkFormatException {
        Map<?, ?> c = find("hashed-grouped"); // rows, scale and shift: every recipe field
        byte[] once = bytes(c.get("once"));
        Map<String, Tensor> params = numpyParams(c);
        HpkFile hpk = hpk(c);
        int rejected = 0;
        for (int length = 0; length < once.length; length += 61) {
            rejected += outcome(Arrays.copyOf(once, length), params, hpk);
        }
        Random random = new Random(11);
        for (int i = 0; i < 2000; i++) {
            byte[] copy = once.clone();
            for (int flips = 1 + random.nextInt(4); flips > 0; flips--) {
                copy[random.nextInt(copy.length)] ^= (byte) (1 << random.nextInt(8));
            }
            rejected += outcome(copy, params, hpk);
        }
        assertTrue("only " + rejected + " damaged files were rejected", rejected > 200);
    }

    /**
     * 1 when rejected with IllegalArgumentException, 0 when it materialized; anything else fails, and
     * both paths (given params, decoded while writing) must agree.
     */
    private static int outcome(byte[] data, Map<String, Tensor> params, HpkFile hpk) {
        byte[] given;
        try {
            given = Materializer.materializeFromHpk(data, params);
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage() != null && !e.getMessage().isEmpty());
            given = null;
        } catch (RuntimeException | Error e) {
            throw new AssertionError("damaged file gave " + e, e);
        }
        try {
            assertArrayEquals(given, Materializer.materializeFromHpk(data, hpk, 2));
        } catch (IllegalArgumentException e) {
            assertTrue("only one path rejected the file: " + e.getMessage(), given == null);
        } catch (RuntimeException | Error e) {
            throw new AssertionError("damaged file gave " + e, e);
        }
        return given == null ? 1 : 0;
    }

    private static void expectRejected(String what, Runnable call, String message) {
        try {
            call.run();
            fail(what + ": expected IllegalArgumentException: " + message);
        } catch (IllegalArgumentException e) {
            assertTrue(what + ": " + e.getMessage(), e.getMessage().contains(message));
        }
    }
}
