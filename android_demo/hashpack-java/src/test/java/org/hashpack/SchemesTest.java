package org.hashpack;

import static org.hashpack.TestSupport.ints;
import static org.hashpack.TestSupport.list;
import static org.hashpack.TestSupport.obj;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.Test;

/**
 * The fresh, funhash and fsnet schemes against a direct transcription of docs/FORMAT.md §4 on small
 * hand-built files (the fixtures compare them with the numpy runtime), the degenerate cases the spec
 * says coincide with {@code hashed}, and numpy's inverse-DCT bases.
 */
public class SchemesTest {
    private static HpkFile read(TestHpk hpk) {
        try {
            return hpk.read();
        } catch (HpkFormatException e) {
            throw new AssertionError(e);
        }
    }

    private static float[] decode(HpkFile file, String param) {
        Param p = file.params().get(param);
        return Schemes.get(p.scheme()).decode(p, file);
    }

    private static float[] randomSpace(Random random, int size) {
        float[] values = new float[size];
        for (int i = 0; i < size; i++) {
            values[i] = (float) random.nextGaussian();
        }
        return values;
    }

    /**
     * decode(param, file, out): every scheme gives the values of decode(param, file), in {@code out}
     * when a scheme fills buffers (hashed) and it is long enough, else in an array of exactly numel.
     */
    @Test
    public void decodeIntoABufferGivesTheSameValues() {
        HpkFile file = read(TestHpk.parse(TestSupport.readBytes(new File(TestSupport.fixtures(), "mlp.hpk"))));
        int checked = 0;
        for (Param p : file.params().values()) {
            Scheme scheme = Schemes.get(p.scheme());
            float[] expected = scheme.decode(p, file);
            int numel = (int) p.numel();
            float[] larger = new float[numel + 9];
            java.util.Arrays.fill(larger, Float.NaN);
            float[] got = scheme.decode(p, file, larger);
            assertArrayEquals(expected, java.util.Arrays.copyOf(got, numel), 0f);
            if (got == larger) {
                assertTrue(Float.isNaN(larger[numel])); // nothing written past numel
            } else {
                assertEquals(numel, got.length);
            }
            if ("hashed".equals(p.scheme())) {
                assertTrue(p.name(), got == larger);
                checked++;
            }
            float[] tooShort = new float[Math.max(0, numel - 1)];
            float[] fresh = scheme.decode(p, file, tooShort);
            assertTrue(fresh != tooShort);
            assertArrayEquals(expected, fresh, 0f);
            assertArrayEquals(expected, scheme.decode(p, file, null), 0f);
        }
        assertTrue(checked > 0);
    }

    // ------------------------------------------------------------------------------------- fresh

    @Test
    public void freshBasisIsBitIdenticalToNumpy() {
        File fixtures = TestSupport.fixtures();
        Map<?, ?> bases = (Map<?, ?>) TestSupport.readJson(new File(fixtures, "manifest.json")).get("fresh_bases");
        float[] all = TestSupport.readFloats(new File(fixtures, (String) bases.get("file")));
        int offset = 0;
        for (Object size : (List<?>) bases.get("sizes")) {
            int[] k = TestSupport.toInts(size);
            float[] ours = FreshScheme.idctBasis(k[0], k[1]);
            float[] numpy = java.util.Arrays.copyOfRange(all, offset, offset + ours.length);
            FixtureModelsTest.assertBitIdentical("M " + k[0] + "x" + k[1], numpy, ours);
            offset += ours.length;
        }
        assertEquals(all.length, offset);
    }

    @Test
    public void freshBasisIsOrthogonal() {
        for (int[] k : new int[][] {{1, 1}, {3, 3}, {5, 2}, {7, 7}, {32, 32}}) {
            int taps = k[0] * k[1];
            float[] m = FreshScheme.idctBasis(k[0], k[1]);
            for (int a = 0; a < taps; a += Math.max(1, taps / 17)) {
                for (int b = 0; b < taps; b += Math.max(1, taps / 13)) {
                    double dot = 0;
                    for (int x = 0; x < taps; x++) {
                        dot += (double) m[a * taps + x] * m[b * taps + x];
                    }
                    assertEquals(k[0] + "x" + k[1] + " rows " + a + ", " + b, a == b ? 1 : 0, dot, 1e-5);
                }
            }
        }
    }

    /** FORMAT.md §4 fresh, steps 1-3, transcribed: bands by u + v, per-band pools, inverse DCT. */
    @Test
    public void freshFollowsTheSpec() {
        Random random = new Random(7);
        int o = 3;
        int in = 2;
        int kh = 3;
        int kw = 2;
        int[] bandSizes = {3, 0, 4, 2}; // nb = kh + kw - 1 = 4; band 1 has no buckets (low-passed)
        float[] space = randomSpace(random, 9);
        long seed = 2840119437L;
        HpkFile file = read(TestHpk.builder(in, kh, kw).space("s", space)
                .param("w", "fresh", new int[] {o, in, kh, kw}, obj("space", "s", "seed", seed, "bands",
                        ints(bandSizes)))
                .node("Conv2d", "c", list("x"), obj("weight", "w"), obj("stride", ints(1, 1), "padding", ints(0, 0),
                        "dilation", ints(1, 1), "groups", 1))
                .output("c", o, 1, 1));
        Param p = file.params().get("w");
        float[] coefficients = FreshScheme.coefficients(p, file);
        float[] weight = decode(file, "w");
        Hp32 h = new Hp32(seed, 0);
        int[] offsets = {0, 3, 3, 7};
        for (int f = 0; f < o * in; f++) {
            for (int x = 0; x < kh; x++) {
                for (int y = 0; y < kw; y++) {
                    double expected = 0;
                    for (int u = 0; u < kh; u++) {
                        for (int v = 0; v < kw; v++) {
                            int i = (f * kh + u) * kw + v;
                            int band = Math.min(u + v, bandSizes.length - 1);
                            long hash = h.hash(i);
                            float c = bandSizes[band] == 0 ? 0f
                                    : h.sign(i) * space[(int) (offsets[band] + hash % bandSizes[band])];
                            assertEquals("C[" + i + "]", c, coefficients[i], 0f);
                            expected += c * dct(kh, u, x) * dct(kw, v, y);
                        }
                    }
                    assertEquals("W", expected, weight[(f * kh + x) * kw + y], 1e-5);
                }
            }
        }
    }

    private static double dct(int n, int u, int x) {
        return (u == 0 ? Math.sqrt(1.0 / n) : Math.sqrt(2.0 / n)) * Math.cos(Math.PI * (2 * x + 1) * u / (2.0 * n));
    }

    /** One band: C is exactly the hashed tensor with the same seed and space (FORMAT.md §4 fresh). */
    @Test
    public void freshWithOneBandHasTheHashedCoefficients() {
        float[] space = randomSpace(new Random(3), 11);
        HpkFile file = read(TestHpk.builder(5, 3, 3).space("s", space)
                .param("w", "fresh", new int[] {4, 5, 3, 3}, obj("space", "s", "seed", 99, "bands", ints(11)))
                .hashed("h", "s", 99, 4, 5, 3, 3)
                .node("Conv2d", "c", list("x"), obj("weight", "w"), obj("stride", ints(1, 1), "padding", ints(0, 0),
                        "dilation", ints(1, 1), "groups", 1))
                .output("c", 4, 1, 1));
        FixtureModelsTest.assertBitIdentical("C", decode(file, "h"), FreshScheme.coefficients(file.params().get("w"),
                file));
    }

    // ----------------------------------------------------------------------------------- funhash

    /** FORMAT.md §4 funhash transcribed: dual-space, two hops, g = a 6 → 2 → 1 MLP, int8 and f16 spaces. */
    @Test
    public void funhashFollowsTheSpec() {
        Random random = new Random(11);
        byte[] codes = {-127, -3, 0, 5, 90};
        float scale = 0.0125f;
        short[] halves = {0x3C00, (short) 0xC200, 0x1234};
        int hashes = 3;
        int hops = 2;
        int hidden = 2;
        int inputs = hashes * hops;
        float[] g = randomSpace(random, inputs * hidden + 2 * hidden + 1);
        long seed = 123456789L;
        HpkFile file = read(TestHpk.builder(4).spaceI8("a", scale, codes).spaceF16("b", halves).space("g", g)
                .param("w", "funhash", new int[] {3, 4}, obj("spaces", list("a", "b"), "seed", seed, "hashes", hashes,
                        "hops", hops, "hidden", hidden, "g", "g"))
                .node("Linear", "l", list("x"), obj("weight", "w"), obj()).output("l", 3));
        float[][] spaces = {new float[codes.length], new float[halves.length]};
        for (int j = 0; j < codes.length; j++) {
            spaces[0][j] = codes[j] * scale;
        }
        for (int j = 0; j < halves.length; j++) {
            spaces[1][j] = Half.toFloat(halves[j]);
        }
        Param p = file.params().get("w");
        float[] weight = decode(file, "w");
        float[] z = FunHashScheme.fetches(p, file, 0, 12, FunHashScheme.HOP_TABLE_LIMIT);
        float[] expectedZ = new float[12 * inputs];
        for (int i = 0; i < 12; i++) {
            for (int u = 0; u < hashes; u++) {
                float[] a = spaces[u % 2];
                long h1 = new Hp32(seed, u).hash(i);
                long b = h1 % a.length;
                int s1 = h1 < (1L << 31) ? 1 : -1;
                expectedZ[i * inputs + u] = s1 * a[(int) b];
                long h2 = new Hp32(seed, hashes + u).hash(b);
                int s2 = h2 < (1L << 31) ? 1 : -1;
                expectedZ[i * inputs + hashes + u] = s1 * s2 * a[(int) (h2 % a.length)];
            }
            double y = g[inputs * hidden + 2 * hidden];
            for (int k = 0; k < hidden; k++) {
                double s = g[inputs * hidden + k];
                for (int j = 0; j < inputs; j++) {
                    s += (double) g[k * inputs + j] * expectedZ[i * inputs + j];
                }
                y += g[inputs * hidden + hidden + k] * Math.max(s, 0);
            }
            assertEquals("weight " + i, y, weight[i], 1e-5);
        }
        FixtureModelsTest.assertBitIdentical("z", expectedZ, z);
        FixtureModelsTest.assertBitIdentical("z, hop 2 on the fly", expectedZ,
                FunHashScheme.fetches(p, file, 0, 12, 0));
    }

    /** U = 1, hops = 1, H = 0 with one space is bit-for-bit hashed (FORMAT.md §4 funhash). */
    @Test
    public void funhashIdentityIsHashed() {
        float[] space = randomSpace(new Random(5), 13);
        HpkFile file = read(TestHpk.builder(8).space("s", space)
                .param("w", "funhash", new int[] {40, 8}, obj("spaces", list("s"), "seed", 4242, "hashes", 1, "hops", 1,
                        "hidden", 0))
                .hashed("h", "s", 4242, 40, 8)
                .node("Linear", "l", list("x"), obj("weight", "w"), obj()).output("l", 40));
        FixtureModelsTest.assertBitIdentical("w", decode(file, "h"), decode(file, "w"));
    }

    // ------------------------------------------------------------------------------------- fsnet

    /** Element j of filter o is space[(o·t + j) mod L], also when a filter is longer than the summary. */
    @Test
    public void fsnetFollowsTheSpec() {
        float[] space = {1, 2, 3, 4, 5};
        int[][] cases = {{3, 4, 2}, {2, 12, 5}, {4, 3, 1}, {6, 7, 3}, {1, 1, 5}};
        for (int[] c : cases) {
            int filters = c[0];
            int length = c[1];
            int stride = c[2];
            HpkFile file = read(TestHpk.builder(length).space("s", space)
                    .param("w", "fsnet", new int[] {filters, length}, obj("space", "s", "stride", stride))
                    .node("Linear", "l", list("x"), obj("weight", "w"), obj()).output("l", filters));
            float[] weight = decode(file, "w");
            float[] expected = new float[filters * length];
            for (int o = 0; o < filters; o++) {
                for (int j = 0; j < length; j++) {
                    expected[o * length + j] = space[(o * stride + j) % space.length];
                }
            }
            assertArrayEquals(java.util.Arrays.toString(c), expected, weight, 0f);
        }
    }

    @Test
    public void fsnetConvFiltersAreFlattenedRowMajor() {
        float[] space = randomSpace(new Random(9), 10);
        HpkFile file = read(TestHpk.builder(2, 2, 2).space("s", space)
                .param("w", "fsnet", new int[] {3, 2, 2, 2}, obj("space", "s", "stride", 3))
                .node("Conv2d", "c", list("x"), obj("weight", "w"), obj("stride", ints(1, 1), "padding", ints(0, 0),
                        "dilation", ints(1, 1), "groups", 1))
                .output("c", 3, 1, 1));
        float[] weight = decode(file, "w");
        for (int o = 0; o < 3; o++) {
            for (int j = 0; j < 8; j++) {
                assertEquals(space[(o * 3 + j) % 10], weight[o * 8 + j], 0f);
            }
        }
        assertTrue(Schemes.names().containsAll(java.util.Arrays.asList("fresh", "funhash", "fsnet")));
    }
}
