package org.hashpack;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/** The hp32-uniform golden-input generator against tests/vectors/golden_vectors.json (pure-Python reference). */
public class GoldenTest {
    private static Map<String, Object> vectors() {
        return TestSupport.readJson(new File(TestSupport.vectors().getParentFile(), "golden_vectors.json"));
    }

    @Test
    public void generatorMatchesVectorsBitForBit() throws Exception {
        Map<String, Object> v = vectors();
        assertEquals(Golden.GENERATOR, v.get("generator"));
        List<?> cases = (List<?>) v.get("cases");
        assertTrue(cases.size() >= 4);
        for (Object c : cases) {
            Map<?, ?> m = (Map<?, ?>) c;
            long seed = ((BigInteger) m.get("seed")).longValueExact();
            int count = ((BigInteger) m.get("count")).intValueExact();
            int perSample = TestSupport.numel(TestSupport.toInts(m.get("shape")));
            float[] values = Golden.generate(seed, count, perSample);
            assertEquals(count * perSample, values.length);
            List<?> bits = (List<?>) m.get("first_bits");
            for (int j = 0; j < bits.size(); j++) {
                String hex = String.format("%08x", Float.floatToRawIntBits(values[j]));
                assertEquals("seed " + seed + " value " + j, bits.get(j), hex);
            }
            ByteBuffer buffer = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
            for (float x : values) {
                buffer.putFloat(x);
                assertTrue(x >= -1f && x < 1f);
            }
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(buffer.array());
            StringBuilder s = new StringBuilder();
            for (byte b : digest) {
                s.append(String.format("%02x", b & 0xFF));
            }
            assertEquals("sha256 of seed " + seed, m.get("sha256"), s.toString());
        }
    }

    @Test(expected = IllegalArgumentException.class)
    public void generatorRefusesMoreThanTheLimit() {
        Golden.generate(1, 1024, Golden.MAX_VALUES);
    }
}
