package org.hashpack;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.Test;

/** The Java Materializer rebuilds, byte for byte, the model Python's materialize() makes; bad input fails cleanly. */
public class MaterializerTest {
    private static Map<?, ?> fixture() {
        return (Map<?, ?>) TestSupport.readJson(new File(TestSupport.fixtures(), "manifest.json")).get("materialize");
    }

    private static byte[] file(String key) {
        return TestSupport.readBytes(new File(TestSupport.fixtures(), (String) fixture().get(key)));
    }

    private static Map<String, float[]> weights() {
        Map<String, float[]> out = new HashMap<>();
        for (Map.Entry<?, ?> e : ((Map<?, ?>) fixture().get("weights")).entrySet()) {
            out.put((String) e.getKey(), TestSupport.readFloats(new File(TestSupport.fixtures(), (String) e.getValue())));
        }
        return out;
    }

    @Test
    public void rebuildsPythonsMaterializedModel() {
        byte[] once = file("once");
        List<Materializer.Slot> slots = Materializer.slots(once);
        assertEquals(weights().size(), slots.size());
        assertTrue(slots.size() >= 10); // LeNet-5: five layers, weight and bias each
        assertArrayEquals(file("expected"), Materializer.materialize(once, weights()));
    }

    @Test
    public void metadataHoldsTheTemplateAndTheSlots() {
        Map<String, byte[]> metadata = Materializer.readMetadata(file("once"));
        assertTrue(metadata.containsKey(Materializer.TEMPLATE_METADATA));
        assertTrue(metadata.containsKey(Materializer.SLOTS_METADATA));
        byte[] template = metadata.get(Materializer.TEMPLATE_METADATA);
        assertEquals('T', template[4]); // the template is a .tflite of its own: "TFL3"
        assertEquals('3', template[7]);
        assertTrue(Materializer.readMetadata(file("plain")).isEmpty());
    }

    @Test
    public void aFileWithoutTemplateOrWithWrongWeightsIsRejected() {
        expectRejected(() -> Materializer.materialize(file("plain"), weights()), "no hashpack materialize template");
        Map<String, float[]> missing = weights();
        String first = missing.keySet().iterator().next();
        missing.remove(first);
        expectRejected(() -> Materializer.materialize(file("once"), missing), "no value given for weight");
        Map<String, float[]> short_ = weights();
        short_.put(first, new float[3]);
        expectRejected(() -> Materializer.materialize(file("once"), short_), "its slot holds");
    }

    @Test
    public void truncatedAndCorruptFilesGiveIllegalArgumentExceptionOnly() {
        byte[] once = file("once");
        Map<String, float[]> weights = weights();
        int rejected = 0;
        for (int length = 0; length < once.length; length += 97) {
            rejected += outcome(java.util.Arrays.copyOf(once, length), weights);
        }
        Random random = new Random(7);
        for (int i = 0; i < 3000; i++) {
            byte[] copy = once.clone();
            for (int flips = 1 + random.nextInt(4); flips > 0; flips--) {
                copy[random.nextInt(copy.length)] ^= (byte) (1 << random.nextInt(8));
            }
            rejected += outcome(copy, weights);
        }
        assertTrue("only " + rejected + " damaged files were rejected", rejected > 300);
    }

    /** 1 when rejected with IllegalArgumentException, 0 when it materialized; anything else fails. */
    private static int outcome(byte[] data, Map<String, float[]> weights) {
        try {
            Materializer.materialize(data, weights);
            return 0;
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage() != null && !e.getMessage().isEmpty());
            return 1;
        } catch (RuntimeException | Error e) {
            throw new AssertionError("damaged file gave " + e, e);
        }
    }

    private static void expectRejected(Runnable call, String message) {
        try {
            call.run();
            fail("expected IllegalArgumentException: " + message);
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage(), e.getMessage().contains(message));
        }
    }
}
