package org.hashpack;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.math.BigInteger;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.BeforeClass;
import org.junit.Test;

/** hp32 against the shared test vectors (tests/vectors/hash_vectors.json) and the bulk gather. */
public class Hp32Test {
    private static Map<String, Object> vectors;

    @BeforeClass
    public static void load() {
        vectors = TestSupport.readJson(TestSupport.vectors());
    }

    private static long u32(Object json) {
        return ((BigInteger) json).longValueExact();
    }

    @Test
    public void vectorFileIsHp32Version1() {
        assertEquals("hp32", vectors.get("hash"));
        assertEquals(BigInteger.ONE, vectors.get("version"));
    }

    @Test
    public void mix32MatchesVectors() {
        List<?> cases = (List<?>) vectors.get("mix32");
        assertTrue(cases.size() >= 8);
        for (Object c : cases) {
            Map<?, ?> m = (Map<?, ?>) c;
            assertEquals("mix32(" + m.get("x") + ")", u32(m.get("mix32")), Hp32.mix32(u32(m.get("x"))));
        }
    }

    @Test
    public void keysAndMultipliersMatchVectors() {
        for (Object c : (List<?>) vectors.get("keys")) {
            Map<?, ?> m = (Map<?, ?>) c;
            Hp32 h = new Hp32(u32(m.get("seed")), (int) u32(m.get("function")));
            assertEquals("key" + m, u32(m.get("key")), h.key());
            assertEquals("multiplier" + m, u32(m.get("multiplier")), h.multiplier());
            assertEquals("multiplier is odd", 1, h.multiplier() & 1);
            assertTrue("multiplier < 2^31", h.multiplier() < (1L << 31));
        }
    }

    @Test
    public void hashesBucketsAndSignsMatchVectors() {
        int checked = 0;
        for (Object c : (List<?>) vectors.get("cases")) {
            Map<?, ?> m = (Map<?, ?>) c;
            Hp32 h = new Hp32(u32(m.get("seed")), (int) u32(m.get("function")));
            long k = u32(m.get("num_buckets"));
            List<?> indices = (List<?>) m.get("indices");
            for (int j = 0; j < indices.size(); j++) {
                long i = u32(indices.get(j));
                String where = m.get("seed") + "/" + m.get("function") + "/K=" + k + " i=" + i;
                assertEquals("hash " + where, u32(((List<?>) m.get("hashes")).get(j)), h.hash(i));
                assertEquals("bucket " + where, u32(((List<?>) m.get("buckets")).get(j)), h.bucket(i, k));
                assertEquals("sign " + where, ((BigInteger) ((List<?>) m.get("signs")).get(j)).intValue(), h.sign(i));
                checked++;
            }
        }
        assertTrue(checked > 50);
    }

    /** The fast gather equals sign(i) * space[bucket(i)] from the reference methods, bit for bit. */
    @Test
    public void gatherSignedEqualsReference() {
        Random random = new Random(7);
        int[] bucketCounts = {1, 2, 7, 97, 12500, 1 << 16};
        long[] seeds = {0, 1, 42, 0xFFFFFFFFL, 0x9E3779B9L, 2840119437L};
        for (int b = 0; b < bucketCounts.length; b++) {
            float[] space = new float[bucketCounts[b]];
            for (int j = 0; j < space.length; j++) {
                space[j] = (float) random.nextGaussian();
            }
            space[0] = -0.0f; // the sign flip of -0.0 must give +0.0 exactly as -1.0f * -0.0f does
            Hp32 h = new Hp32(seeds[b], b % 3);
            float[] out = new float[5000];
            h.gatherSigned(space, out);
            for (int i = 0; i < out.length; i++) {
                float expected = h.sign(i) * space[(int) h.bucket(i, space.length)];
                assertEquals("i=" + i, Float.floatToRawIntBits(expected), Float.floatToRawIntBits(out[i]));
            }
        }
    }

    /** With a count, only out[0, count) is written (a reused buffer): the same values as a full gather. */
    @Test
    public void gatherSignedWithCountFillsOnlyThePrefix() {
        float[] space = {0.5f, -1.25f, 3.0f, 7.5f, -0.0f};
        Hp32 h = new Hp32(2840119437L, 0);
        float[] full = new float[60];
        h.gatherSigned(space, full);
        float[] buffer = new float[100];
        Arrays.fill(buffer, Float.NaN);
        h.gatherSigned(space, buffer, 60);
        for (int i = 0; i < buffer.length; i++) {
            int expected = Float.floatToRawIntBits(i < 60 ? full[i] : Float.NaN);
            assertEquals("i=" + i, expected, Float.floatToRawIntBits(buffer[i]));
        }
        for (int count : new int[] {-1, 101}) {
            try {
                h.gatherSigned(space, buffer, count);
                fail("count " + count + " accepted");
            } catch (IllegalArgumentException e) {
                assertTrue(e.getMessage(), e.getMessage().contains("count " + count));
            }
        }
    }

    /** Both fast remainders (float estimate, Granlund-Montgomery) equal % for every bucket count shape and worst-case dividends. */
    @Test
    public void fastModuloIsExact() {
        Random random = new Random(99);
        long[] ks = {1, 2, 3, 7, 10, 97, 12500, 65536, 65537, 1_000_003, (1L << 30) - 1, 1L << 30, 3 << 28};
        for (int t = 0; t < 2000; t++) {
            long k = t < ks.length ? ks[t] : 1 + (random.nextLong() >>> 34); // up to 2^30
            double inverse = 1.0 / k;
            int shift = Hp32.divisionShift(k);
            long magic = Hp32.divisionMagic(k, shift);
            assertTrue("magic " + magic + " for k=" + k, magic >= 1 && magic <= (1L << 32));
            long[] xs = {0, 1, k - 1, k, k + 1, Hp32.MASK, Hp32.MASK - 1, (Hp32.MASK / k) * k,
                (Hp32.MASK / k) * k - 1, random.nextLong() >>> 32};
            for (long x : xs) {
                if (x < 0 || x > Hp32.MASK) {
                    continue;
                }
                assertEquals("x=" + x + " k=" + k, x % k, Hp32.mod(x, k, inverse));
                assertEquals("x=" + x + " k=" + k, x % k, Hp32.remainder(x, k, magic, shift));
            }
            for (int j = 0; j < 200; j++) { // multiples of k and their neighbours, where rounding bites
                long q = (random.nextLong() >>> 1) % (Hp32.MASK / k + 1);
                for (long x = q * k - 1; x <= q * k + 1; x++) {
                    if (x >= 0 && x <= Hp32.MASK) {
                        assertEquals("x=" + x + " k=" + k, x % k, Hp32.mod(x, k, inverse));
                        assertEquals("x=" + x + " k=" + k, x % k, Hp32.remainder(x, k, magic, shift));
                    }
                }
            }
        }
    }

    /** Granlund-Montgomery against % on about 2^25 dividends spread over [0, 2^32), at three bucket counts. */
    @Test
    public void remainderIsExactOnDividendsSpreadOverU32() {
        for (long k : new long[] {3, 12500, (1L << 30) - 1}) {
            int shift = Hp32.divisionShift(k);
            long magic = Hp32.divisionMagic(k, shift);
            for (long x = 0; x <= Hp32.MASK; x += 1 + (x & 0xFF)) { // varied steps: about a second
                if (Hp32.remainder(x, k, magic, shift) != x % k) {
                    fail("x=" + x + " k=" + k);
                }
            }
        }
    }

    @Test(expected = IllegalArgumentException.class)
    public void seedAbove32BitsIsRejected() {
        new Hp32(1L << 32, 0);
    }

    @Test(expected = IllegalArgumentException.class)
    public void negativeSeedIsRejected() {
        new Hp32(-1, 0);
    }

    @Test
    public void largestIndexDoesNotOverflow() {
        // (i ^ key) < 2^32 and multiplier < 2^31: the product stays below 2^63
        Hp32 h = new Hp32(0xFFFFFFFFL, 0);
        long x = h.hash(0xFFFFFFFFL);
        assertTrue(x >= 0 && x <= Hp32.MASK);
        assertArrayEquals(new long[] {h.hash(5)}, new long[] {new Hp32(0xFFFFFFFFL, 0).hash(5)});
    }
}
