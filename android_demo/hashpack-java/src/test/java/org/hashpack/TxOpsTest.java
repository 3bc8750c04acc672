package org.hashpack;

import static org.hashpack.TestSupport.list;
import static org.hashpack.TestSupport.obj;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.Arrays;
import java.util.Collections;
import java.util.Map;
import java.util.Random;
import org.hashpack.ops.Gelu;
import org.junit.Test;

/**
 * The transformer ops of issue 15 (docs/FORMAT.md §5: LayerNorm, Gelu, MatMul, Attention,
 * Constant, Embedding, Linear over the last axis) and int32 graph inputs, against direct
 * transcriptions of the PyTorch definitions on random shapes and attrs; hashed embedding tables
 * regenerated row by row against the whole decoded table, bit for bit. TxOpCases (ZooOpCasesTest)
 * checks the same ops against the numpy runtime and torch's golden outputs.
 */
public class TxOpsTest {
    private final Random random = new Random(1515);

    private float[] randn(int n, double scale) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) (random.nextGaussian() * scale);
        }
        return out;
    }

    private int[] randomShape(int rank, int maxDim) {
        int[] shape = new int[rank];
        for (int d = 0; d < rank; d++) {
            shape[d] = 1 + random.nextInt(maxDim);
        }
        return shape;
    }

    private static Model model(TestHpk hpk) {
        try {
            return new Model(hpk.read());
        } catch (HpkFormatException e) {
            throw new AssertionError(e);
        }
    }

    private static void assertClose(String what, double[] expected, float[] actual, double tolerance) {
        assertEquals(what + ": length", expected.length, actual.length);
        for (int i = 0; i < expected.length; i++) {
            double allowed = tolerance * Math.max(1, Math.abs(expected[i]));
            if (!(Math.abs(expected[i] - actual[i]) <= allowed)) {
                throw new AssertionError(what + " [" + i + "]: expected " + expected[i] + ", got " + actual[i]);
            }
        }
    }

    private static int[] concat(int[] a, int... b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static int numel(int[] shape) {
        return TestSupport.numel(shape);
    }

    // --------------------------------------------------------------------------------- LayerNorm

    @Test
    public void layerNormOverTheLastDims() {
        double[] epsChoices = {1e-5, 1e-3, 0.1, 0.5};
        for (int trial = 0; trial < 40; trial++) {
            int[] shape = randomShape(1 + random.nextInt(4), 5);
            int dims = 1 + random.nextInt(shape.length);
            int[] tail = Arrays.copyOfRange(shape, shape.length - dims, shape.length);
            boolean affine = random.nextBoolean();
            double eps = epsChoices[random.nextInt(epsChoices.length)];
            int group = numel(tail);
            float[] w = randn(group, 1);
            float[] b = randn(group, 1);
            TestHpk.Builder builder = TestHpk.builder(shape);
            Map<String, Object> params = obj();
            if (affine) {
                builder.dense("w", tail, w).dense("b", tail, b);
                params = obj("weight", "w", "bias", "b");
            }
            Model m = model(builder.node("LayerNorm", "n", list("x"), params, obj("dims", dims, "eps", eps))
                    .output("n", shape));
            int batch = 1 + random.nextInt(3);
            float[] x = randn(batch * numel(shape), 3);
            if (trial == 0) {
                Arrays.fill(x, 0, group, 2.5f); // a constant group: zero variance, y = 0 (+ bias)
            }
            double[] expected = new double[x.length];
            double epsF = (float) eps; // torch reads eps as float32
            for (int start = 0; start < x.length; start += group) { // each group: the last `dims` axes
                double mean = 0;
                for (int i = 0; i < group; i++) {
                    mean += x[start + i];
                }
                mean /= group;
                double var = 0;
                for (int i = 0; i < group; i++) {
                    var += (x[start + i] - mean) * (x[start + i] - mean);
                }
                var /= group; // biased, as F.layer_norm
                for (int i = 0; i < group; i++) {
                    double y = (x[start + i] - mean) / Math.sqrt(var + epsF);
                    expected[start + i] = affine ? y * w[i] + b[i] : y;
                }
            }
            assertClose("LayerNorm " + Arrays.toString(shape) + " dims " + dims, expected, m.run(x, batch), 1e-5);
        }
    }

    // -------------------------------------------------------------------------------------- Gelu

    /** erf by Simpson's rule on 2/√π·e^{-t²} (independent of the runtime's series). */
    private static double erfSimpson(double z) {
        int steps = 2000;
        double h = z / steps;
        double sum = 0;
        for (int i = 0; i <= steps; i++) {
            double t = i * h;
            double f = Math.exp(-t * t);
            sum += (i == 0 || i == steps) ? f : (i % 2 == 1 ? 4 * f : 2 * f);
        }
        return sum * h / 3 * 2 / Math.sqrt(Math.PI);
    }

    @Test
    public void erfMatchesReferenceValues() {
        // erf(z) to 16 digits (Abramowitz & Stegun table 7.1 / mpmath)
        double[][] table = {{0, 0}, {0.1, 0.1124629160182849}, {0.5, 0.5204998778130465},
            {1, 0.8427007929497149}, {1.5, 0.9661051464753108}, {2, 0.9953222650189527},
            {3, 0.9999779095030014}, {4, 0.9999999845827421}, {-0.7, -0.6778011938374184}, {7, 1}};
        for (double[] row : table) {
            assertEquals("erf(" + row[0] + ")", row[1], Gelu.erf(row[0]), 2e-15);
        }
        for (int i = 0; i < 200; i++) {
            double z = random.nextGaussian() * 3;
            assertEquals("erf(" + z + ")", erfSimpson(z), Gelu.erf(z), 1e-12);
        }
    }

    @Test
    public void geluErfAndTanhForms() {
        float[] x = randn(2 * 300, 4);
        float[] special = {0, -0f, 1, -1, 3, -3, 10, -10, 50, -50};
        System.arraycopy(special, 0, x, 0, special.length);
        for (boolean approximate : new boolean[] {false, true}) {
            Model m = model(TestHpk.builder(3, 100)
                    .node("Gelu", "n", list("x"), obj(), obj("approximate", approximate)).output("n", 3, 100));
            double[] expected = new double[x.length];
            for (int i = 0; i < x.length; i++) {
                double v = x[i];
                expected[i] = approximate
                        ? 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)))
                        : v * 0.5 * (1 + erfSimpson(v / Math.sqrt(2)));
            }
            float[] y = m.run(x, 2);
            assertClose("Gelu approximate=" + approximate, expected, y, 1e-6);
            assertEquals(0f, y[0], 0f);
            assertEquals(-50 * 0.5 * (1 + (approximate ? Math.tanh(-1e9) : -1)), y[9], 1e-30);
        }
    }

    // ------------------------------------------------------------------------------------ MatMul

    @Test
    public void matMulOfRandomBatchedShapes() {
        for (int trial = 0; trial < 30; trial++) {
            int[] lead = randomShape(random.nextInt(3), 3); // dims between the batch and the last two
            int mRows = 1 + random.nextInt(5);
            int k = 1 + random.nextInt(6);
            int p = 1 + random.nextInt(5);
            int[] aShape = concat(lead, mRows, k);
            int[] bShape = concat(lead, k, p);
            boolean constantB = random.nextBoolean(); // the other operand a Constant (equal over the batch)
            float[] fixed = randn(numel(constantB ? bShape : aShape), 1);
            int[] inputShape = constantB ? aShape : bShape;
            TestHpk.Builder builder = TestHpk.builder(inputShape).dense("c", constantB ? bShape : aShape, fixed)
                    .node("Constant", "c", list("x"), obj("value", "c"), obj());
            Model m = model(builder.node("MatMul", "n", constantB ? list("x", "c") : list("c", "x"), obj(), obj())
                    .output("n", concat(lead, mRows, p)));
            int batch = 1 + random.nextInt(3);
            float[] x = randn(batch * numel(inputShape), 2);
            int groups = batch * numel(lead);
            double[] expected = new double[groups * mRows * p];
            for (int g = 0; g < groups; g++) {
                int gl = g % numel(lead); // the Constant repeats over the batch
                for (int i = 0; i < mRows; i++) {
                    for (int j = 0; j < p; j++) {
                        double acc = 0;
                        for (int t = 0; t < k; t++) {
                            double a = constantB ? x[(g * mRows + i) * k + t] : fixed[(gl * mRows + i) * k + t];
                            double b = constantB ? fixed[(gl * k + t) * p + j] : x[(g * k + t) * p + j];
                            acc += a * b;
                        }
                        expected[(g * mRows + i) * p + j] = acc;
                    }
                }
            }
            assertClose("MatMul " + Arrays.toString(aShape) + " @ " + Arrays.toString(bShape), expected,
                    m.run(x, batch), 1e-5);
        }
    }

    // --------------------------------------------------------------------------------- Attention

    /**
     * q, k, v sliced from one input {@code [N, H, L + 2S, W]}: q rows {@code [0, L)} and columns
     * {@code [0, E)}, k rows {@code [L, L + S)}, v rows {@code [L + S, L + 2S)} and columns {@code [0, Ev)}.
     */
    @Test
    public void attentionAsScaledDotProductAttention() {
        for (int trial = 0; trial < 30; trial++) {
            int heads = 1 + random.nextInt(3);
            int len = 1 + random.nextInt(5);
            int src = 1 + random.nextInt(5);
            int e = 1 + random.nextInt(4);
            int ev = 1 + random.nextInt(4);
            int width = Math.max(e, ev);
            int rows = len + 2 * src;
            boolean causal = random.nextBoolean();
            double scale = trial == 0 ? -0.5 : 0.1 + random.nextDouble();
            int[] shape = {heads, rows, width};
            Model m = model(TestHpk.builder(shape)
                    .node("Slice", "qr", list("x"), obj(), obj("axis", 2, "start", 0, "end", len))
                    .node("Slice", "q", list("qr"), obj(), obj("axis", 3, "start", 0, "end", e))
                    .node("Slice", "kr", list("x"), obj(), obj("axis", 2, "start", len, "end", len + src))
                    .node("Slice", "k", list("kr"), obj(), obj("axis", 3, "start", 0, "end", e))
                    .node("Slice", "vr", list("x"), obj(), obj("axis", 2, "start", len + src, "end", rows))
                    .node("Slice", "v", list("vr"), obj(), obj("axis", 3, "start", 0, "end", ev))
                    .node("Attention", "n", list("q", "k", "v"), obj(), obj("scale", scale, "causal", causal))
                    .output("n", heads, len, ev));
            int batch = 1 + random.nextInt(2);
            float[] x = randn(batch * numel(shape), 2);
            double[] expected = new double[batch * heads * len * ev];
            for (int g = 0; g < batch * heads; g++) {
                int base = g * rows * width;
                for (int i = 0; i < len; i++) {
                    double[] scores = new double[src];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < src; j++) {
                        double dot = 0;
                        for (int t = 0; t < e; t++) {
                            dot += (double) x[base + i * width + t] * x[base + (len + j) * width + t];
                        }
                        // torch's is_causal mask: ones(L, S).tril(), -inf above the diagonal
                        scores[j] = causal && j > i ? Double.NEGATIVE_INFINITY : dot * (float) scale;
                        max = Math.max(max, scores[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < src; j++) {
                        scores[j] = Math.exp(scores[j] - max);
                        sum += scores[j];
                    }
                    for (int t = 0; t < ev; t++) {
                        double acc = 0;
                        for (int j = 0; j < src; j++) {
                            acc += scores[j] / sum * x[base + (len + src + j) * width + t];
                        }
                        expected[(g * len + i) * ev + t] = acc;
                    }
                }
            }
            assertClose("Attention H" + heads + " L" + len + " S" + src + " E" + e + " Ev" + ev + " causal "
                    + causal, expected, m.run(x, batch), 1e-5);
        }
    }

    // ---------------------------------------------------------------------------------- Constant

    @Test
    public void constantRepeatsItsValueOverTheBatch() {
        for (int trial = 0; trial < 10; trial++) {
            int[] valueShape = randomShape(1 + random.nextInt(4), 4);
            float[] value = randn(numel(valueShape), 1);
            Model m = model(TestHpk.builder(2, 3).dense("c", valueShape, value)
                    .node("Constant", "n", list("x"), obj("value", "c"), obj()).output("n", valueShape));
            int batch = 1 + random.nextInt(4);
            float[] y = m.run(randn(batch * 6, 1), batch);
            assertEquals(batch * value.length, y.length);
            for (int n = 0; n < batch; n++) {
                for (int i = 0; i < value.length; i++) {
                    assertEquals(value[i], y[n * value.length + i], 0f);
                }
            }
        }
    }

    // -------------------------------------------------------------------------------- Linear N-D

    @Test
    public void linearActsOnTheLastAxis() {
        for (int trial = 0; trial < 10; trial++) {
            int[] lead = randomShape(1 + random.nextInt(3), 4);
            int in = 1 + random.nextInt(6);
            int out = 1 + random.nextInt(5);
            float[] w = randn(out * in, 1);
            float[] b = randn(out, 1);
            Model m = model(TestHpk.builder(concat(lead, in)).dense("w", new int[] {out, in}, w)
                    .dense("b", new int[] {out}, b)
                    .node("Linear", "n", list("x"), obj("weight", "w", "bias", "b"), obj())
                    .output("n", concat(lead, out)));
            int batch = 2;
            float[] x = randn(batch * numel(lead) * in, 2);
            int rows = batch * numel(lead);
            double[] expected = new double[rows * out];
            for (int r = 0; r < rows; r++) {
                for (int o = 0; o < out; o++) {
                    double acc = b[o];
                    for (int i = 0; i < in; i++) {
                        acc += (double) x[r * in + i] * w[o * in + i];
                    }
                    expected[r * out + o] = acc;
                }
            }
            assertClose("Linear " + Arrays.toString(concat(lead, in)), expected, m.run(x, batch), 1e-5);
        }
    }

    // --------------------------------------------------------------------------------- Embedding

    private int[] randomIds(int count, int vocab) {
        int[] ids = new int[count];
        for (int i = 0; i < count; i++) {
            ids[i] = random.nextInt(vocab);
        }
        return ids;
    }

    private static float[] asFloats(int[] ids) {
        float[] out = new float[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = ids[i];
        }
        return out;
    }

    @Test
    public void embeddingLooksUpRowsWithPaddingIdx() {
        for (int trial = 0; trial < 20; trial++) {
            int[] idsShape = randomShape(1 + random.nextInt(3), 4);
            int vocab = 1 + random.nextInt(9);
            int dim = 1 + random.nextInt(5);
            float[] table = randn(vocab * dim, 1);
            Integer padding = random.nextBoolean() ? random.nextInt(vocab) : null;
            Map<String, Object> attrs = padding == null ? obj() : obj("padding_idx", padding);
            Model m = model(TestHpk.builder(idsShape).dtype("int32").dense("t", new int[] {vocab, dim}, table)
                    .node("Embedding", "n", list("x"), obj("weight", "t"), attrs).output("n", concat(idsShape, dim)));
            assertTrue(m.takesIds());
            int batch = 1 + random.nextInt(3);
            int[] ids = randomIds(batch * numel(idsShape), vocab);
            double[] expected = new double[ids.length * dim];
            for (int i = 0; i < ids.length; i++) {
                for (int j = 0; j < dim; j++) {
                    expected[i * dim + j] = padding != null && ids[i] == padding ? 0 : table[ids[i] * dim + j];
                }
            }
            assertClose("Embedding", expected, m.run(ids, batch), 0);
            assertClose("Embedding (float ids)", expected, m.run(asFloats(ids), batch), 0);
        }
    }

    /** A hashed [V, D] table: the rows regenerated per batch equal the decoded table, bit for bit. */
    @Test
    public void hashedTablesGatherOnlyTheLookedUpRows() throws HpkFormatException {
        int vocab = 50;
        int dim = 6;
        float[] buckets = randn(37, 1);
        long seed = 0xDEADBEEFL;
        TestHpk hpk = TestHpk.builder(5).dtype("int32").space("s", buckets).hashed("t", "s", seed, vocab, dim)
                .node("Embedding", "n", list("x"), obj("weight", "t"), obj("padding_idx", 3)).output("n", 5, dim);
        Model gathered = new Model(hpk.read());
        Model decoded = new Model(hpk.read(), false);
        assertEquals(Collections.singleton("t"), gathered.gatheredTables());
        assertEquals(Collections.emptySet(), decoded.gatheredTables());
        assertEquals(0, gathered.weights().size()); // the table is never held whole
        Hp32 h = new Hp32(seed, 0);
        float[] whole = gathered.weight("t").data(); // decoded on request
        for (int i = 0; i < vocab * dim; i++) {
            assertEquals(h.sign(i) * buckets[(int) h.bucket(i, buckets.length)], whole[i], 0f);
        }
        int[] ids = randomIds(4 * 5, vocab);
        ids[0] = 3;
        ids[1] = vocab - 1;
        float[] a = gathered.run(ids, 4);
        float[] b = decoded.run(ids, 4);
        for (int i = 0; i < ids.length; i++) {
            for (int j = 0; j < dim; j++) {
                float want = ids[i] == 3 ? 0f : whole[ids[i] * dim + j];
                assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(a[i * dim + j]));
                assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(b[i * dim + j]));
            }
        }
    }

    /** A table also read by another op (tied output weights) is decoded whole, once. */
    @Test
    public void tiedTablesAreDecodedWhole() throws HpkFormatException {
        int vocab = 9;
        int dim = 4;
        TestHpk hpk = TestHpk.builder(3).dtype("int32").space("s", randn(11, 1)).hashed("t", "s", 7, vocab, dim)
                .node("Embedding", "e", list("x"), obj("weight", "t"), obj())
                .node("Linear", "n", list("e"), obj("weight", "t"), obj()).output("n", 3, vocab);
        Model m = new Model(hpk.read());
        assertEquals(Collections.emptySet(), m.gatheredTables());
        int[] ids = {0, 8, 4, 1, 1, 2};
        float[] y = m.run(ids, 2);
        float[] w = m.weight("t").data();
        for (int i = 0; i < ids.length; i++) {
            for (int v = 0; v < vocab; v++) {
                double acc = 0;
                for (int j = 0; j < dim; j++) {
                    acc += (double) w[ids[i] * dim + j] * w[v * dim + j];
                }
                assertEquals(acc, y[i * vocab + v], 1e-5);
            }
        }
    }

    @Test
    public void idsOutsideTheTableAreRejectedNamingTheNode() throws HpkFormatException {
        for (boolean hashed : new boolean[] {false, true}) {
            TestHpk.Builder builder = TestHpk.builder(4).dtype("int32");
            builder = hashed ? builder.space("s", randn(5, 1)).hashed("t", "s", 1, 7, 2)
                    : builder.dense("t", new int[] {7, 2}, randn(14, 1));
            Model m = new Model(builder.node("Embedding", "emb", list("x"), obj("weight", "t"), obj())
                    .output("emb", 4, 2).read());
            for (int bad : new int[] {7, -1, Integer.MAX_VALUE, Integer.MIN_VALUE}) {
                try {
                    m.run(new int[] {0, 1, bad, 2}, 1);
                    fail("id " + bad + " accepted");
                } catch (IdsOutOfRangeException e) {
                    assertEquals("test.hpk: node 'emb' (Embedding): token id " + bad
                            + " is outside the table's [0, 7) rows", e.getMessage());
                }
            }
            expectIllegal(() -> m.run(new float[] {0, 1, 2.5f, 3}, 1), "not one");
            expectIllegal(() -> m.run(new float[] {0, 1, 3e9f, 3}, 1), "not one");
            expectIllegal(() -> m.run(new int[] {0, 1, 2}, 1), "input of 3 ids does not match 1 x [N, 4]");
        }
        Model floats = model(TestHpk.builder(2).node("Relu", "n", "x").output("n", 2));
        assertTrue(!floats.takesIds());
        expectIllegal(() -> floats.run(new int[] {0, 1}, 1), "takes float32 input, not token ids");
    }

    private static void expectIllegal(Runnable action, String fragment) {
        try {
            action.run();
        } catch (IdsOutOfRangeException e) {
            throw new AssertionError("expected a plain IllegalArgumentException, got " + e);
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage(), e.getMessage().contains(fragment));
            return;
        }
        fail("nothing thrown, expected \"" + fragment + "\"");
    }

    /** The int32 input's golden samples (F32 whole numbers) run through the ids path. */
    @Test
    public void goldenIdsAreChecked() throws HpkFormatException {
        float[] table = {1, 2, 3, 4, 5, 6};
        float[] ids = {2, 0, 1, 1};
        float[] out = {5, 6, 1, 2, 3, 4, 3, 4};
        Model m = model(TestHpk.builder(2).dtype("int32").dense("t", new int[] {3, 2}, table)
                .node("Embedding", "n", list("x"), obj("weight", "t"), obj()).golden(new int[] {2, 2}, ids,
                        new int[] {2, 2, 2}, out).output("n", 2, 2));
        assertTrue(m.checkGolden(0, 1e-6).passed());
        out[7] = 4.5f;
        Model wrong = model(TestHpk.builder(2).dtype("int32").dense("t", new int[] {3, 2}, table)
                .node("Embedding", "n", list("x"), obj("weight", "t"), obj()).golden(new int[] {2, 2}, ids,
                        new int[] {2, 2, 2}, out).output("n", 2, 2));
        Model.GoldenCheck check = wrong.checkGolden(0, 1e-6);
        assertEquals(1, check.mismatches());
        assertEquals(7, check.firstMismatch());
    }
}
