package org.hashpack;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.junit.runners.Parameterized;
import org.junit.runners.Parameterized.Parameters;

/**
 * Every model written by tests/java_fixtures.py (every scheme, every space dtype): decompressed
 * weights bit-identical to the numpy runtime's wherever docs/FORMAT.md makes them exact (and
 * elsewhere their exact intermediates bit-identical and the weights within the float32 rounding
 * bound of the free-order sums), outputs within 1e-5 of numpy's, golden outputs (PyTorch's)
 * reproduced.
 */
@RunWith(Parameterized.class)
public class FixtureModelsTest {
    /** |java - numpy| for outputs of the same weights (float32 math, different summation order). */
    static final double OUTPUT_TOLERANCE = 1e-5;
    /** The golden check: numpy.allclose-style tolerances against PyTorch's recorded outputs. */
    static final double GOLDEN_ATOL = 1e-5;
    static final double GOLDEN_RTOL = 1e-4;

    @Parameters(name = "{0}")
    public static Collection<Object[]> models() {
        Map<String, Object> manifest = TestSupport.readJson(new File(TestSupport.fixtures(), "manifest.json"));
        List<Object[]> out = new ArrayList<>();
        for (Object m : (List<?>) manifest.get("models")) {
            Map<?, ?> model = (Map<?, ?>) m;
            out.add(new Object[] {model.get("name"), model});
        }
        return out;
    }

    private final Map<?, ?> spec;
    private final Model model;

    public FixtureModelsTest(String name, Map<?, ?> spec) throws HpkFormatException {
        this.spec = spec;
        this.model = Model.load(file((String) spec.get("hpk")));
    }

    private static File file(String name) {
        return new File(TestSupport.fixtures(), name);
    }

    /**
     * Every param whose decoding the format makes exact (dense, hashed, fsnet, funhash with g =
     * identity) is bit-identical to numpy's; the others (fresh's inverse DCT, funhash's MLP g, whose
     * summation order is free) are checked by the two tests below.
     */
    @Test
    public void weightsAreBitIdenticalToNumpy() {
        float[] all = TestSupport.readFloats(file((String) spec.get("weights")));
        List<?> params = (List<?>) spec.get("params");
        // hashed embedding tables are not held decoded (rows are regenerated per batch)
        assertEquals(params.size(), model.weights().size() + model.gatheredTables().size());
        long total = 0;
        for (Object p : params) {
            Map<?, ?> param = (Map<?, ?>) p;
            String name = (String) param.get("name");
            Tensor weight = model.weight(name);
            assertArrayEquals(name, TestSupport.toInts(param.get("shape")), weight.shape());
            assertEquals(name, param.get("scheme"), model.file().params().get(name).scheme());
            int offset = ((Number) param.get("offset")).intValue();
            int count = ((Number) param.get("count")).intValue();
            float[] ours = weight.data();
            assertEquals(name, count, ours.length);
            total += count;
            if (!(Boolean) param.get("exact")) {
                continue;
            }
            assertBitIdentical(name, Arrays.copyOfRange(all, offset, offset + count), ours);
        }
        assertEquals(total, model.file().virtualParameterCount());
    }

    /**
     * The exact part of every free-summation-order param is bit-identical to numpy's: fresh's DCT
     * coefficients C, funhash's fetched values z (with two hops, both through the hop-2 table and
     * hashing each bucket on the fly).
     */
    @Test
    public void exactIntermediatesAreBitIdenticalToNumpy() {
        float[] all = TestSupport.readFloats(file((String) spec.get("intermediates")));
        for (Map<?, ?> param : inexactParams()) {
            String name = (String) param.get("name");
            Param p = model.file().params().get(name);
            float[] expected = intermediate(all, param);
            if ("fresh".equals(p.scheme())) {
                assertBitIdentical(name + " coefficients", expected, FreshScheme.coefficients(p, model.file()));
            } else {
                assertEquals(name, "funhash", p.scheme());
                int numel = (int) p.numel();
                assertBitIdentical(name + " z", expected,
                        FunHashScheme.fetches(p, model.file(), 0, numel, FunHashScheme.HOP_TABLE_LIMIT));
                assertBitIdentical(name + " z (hop 2 hashed on the fly)", expected,
                        FunHashScheme.fetches(p, model.file(), 0, numel, 0));
                int tail = Math.min(numel, 37); // a range that does not start at 0
                float[] part = FunHashScheme.fetches(p, model.file(), numel - tail, tail,
                        FunHashScheme.HOP_TABLE_LIMIT);
                assertBitIdentical(name + " z tail", Arrays.copyOfRange(expected, expected.length - part.length,
                        expected.length), part);
            }
        }
    }

    /**
     * Where FORMAT.md leaves the float32 summation order free, Java's weights and numpy's differ by
     * no more than both dot products' rounding bounds allow: for a sum of n products computed in any
     * order, |computed - exact| <= gamma_n * sum |product|, gamma_n = n u / (1 - n u), u = 2^-24.
     * The bound is evaluated from the exact intermediates (checked bit for bit above).
     */
    @Test
    public void freeOrderWeightsAreWithinTheirRoundingBound() {
        float[] all = TestSupport.readFloats(file((String) spec.get("weights")));
        float[] intermediates = TestSupport.readFloats(file((String) spec.get("intermediates")));
        for (Map<?, ?> param : inexactParams()) {
            String name = (String) param.get("name");
            Param p = model.file().params().get(name);
            int offset = ((Number) param.get("offset")).intValue();
            float[] numpy = Arrays.copyOfRange(all, offset, offset + ((Number) param.get("count")).intValue());
            float[] ours = model.weight(name).data();
            double[] bound = "fresh".equals(p.scheme()) ? freshBound(p, intermediate(intermediates, param))
                    : funhashBound(p, intermediate(intermediates, param));
            for (int i = 0; i < ours.length; i++) {
                double diff = Math.abs((double) ours[i] - numpy[i]);
                if (!(diff <= bound[i])) {
                    throw new AssertionError(String.format("%s[%d]: java %s, numpy %s, |diff| %.3g > bound %.3g", name,
                            i, ours[i], numpy[i], diff, bound[i]));
                }
            }
        }
    }

    private List<Map<?, ?>> inexactParams() {
        List<Map<?, ?>> out = new ArrayList<>();
        for (Object p : (List<?>) spec.get("params")) {
            Map<?, ?> param = (Map<?, ?>) p;
            if (!(Boolean) param.get("exact")) {
                out.add(param);
            }
        }
        return out;
    }

    private static float[] intermediate(float[] all, Map<?, ?> param) {
        Map<?, ?> where = (Map<?, ?>) param.get("intermediate");
        int offset = ((Number) where.get("offset")).intValue();
        return Arrays.copyOfRange(all, offset, offset + ((Number) where.get("count")).intValue());
    }

    static void assertBitIdentical(String name, float[] expected, float[] actual) {
        assertEquals(name + " length", expected.length, actual.length);
        for (int i = 0; i < expected.length; i++) {
            int e = Float.floatToRawIntBits(expected[i]);
            int a = Float.floatToRawIntBits(actual[i]);
            if (e != a) {
                throw new AssertionError(String.format("%s[%d]: java %s (0x%08x), numpy %s (0x%08x)", name, i,
                        actual[i], a, expected[i], e));
            }
        }
    }

    /** gamma_n of the rounding-error analysis of a float32 sum of n terms, with a little slack. */
    static double gamma(int n) {
        double nu = n * 0x1p-24;
        return 1.01 * nu / (1 - nu);
    }

    /** fresh: W[f, x] = sum_j C[f, j] M[j, x]; two implementations differ by at most 2 gamma_taps sum |C M|. */
    private static double[] freshBound(Param p, float[] coefficients) {
        int[] shape = p.shape();
        int taps = shape[2] * shape[3];
        float[] basis = FreshScheme.idctBasis(shape[2], shape[3]);
        double[] bound = new double[coefficients.length];
        for (int f = 0; f < coefficients.length / taps; f++) {
            for (int x = 0; x < taps; x++) {
                double magnitude = 0;
                for (int j = 0; j < taps; j++) {
                    magnitude += Math.abs((double) coefficients[f * taps + j] * basis[j * taps + x]);
                }
                bound[f * taps + x] = 2 * gamma(taps) * magnitude;
            }
        }
        return bound;
    }

    /**
     * funhash: s_h = W1_h . z + b1_h (D + 1 terms), y = w2 . relu(s) + b2 (H + 1 terms). With E_h =
     * gamma_{D+1} (sum |W1_h z| + |b1_h|) the error of one implementation's s_h (ReLU does not grow it),
     * its y is off by at most sum |w2_h| E_h + gamma_{H+1} (sum |w2_h| (|a_h| + E_h) + |b2|); two
     * implementations differ by at most twice that.
     */
    private double[] funhashBound(Param p, float[] z) {
        int inputs = (int) (SchemeFields.checkedLong(p, "hashes") * SchemeFields.checkedLong(p, "hops"));
        int hidden = (int) SchemeFields.checkedLong(p, "hidden");
        return funhashBound(z, inputs, hidden, model.file().spaceValues((String) p.spec().get("g")));
    }

    static double[] funhashBound(float[] z, int inputs, int hidden, float[] g) {
        int count = z.length / inputs;
        double[] bound = new double[count];
        int b1 = inputs * hidden;
        int w2 = b1 + hidden;
        int b2 = w2 + hidden;
        for (int k = 0; k < count; k++) {
            double propagated = 0;
            double outer = Math.abs(g[b2]);
            for (int h = 0; h < hidden; h++) {
                double s = g[b1 + h];
                double magnitude = Math.abs(g[b1 + h]);
                for (int j = 0; j < inputs; j++) {
                    double term = (double) g[h * inputs + j] * z[k * inputs + j];
                    s += term;
                    magnitude += Math.abs(term);
                }
                double error = gamma(inputs + 1) * magnitude;
                propagated += Math.abs(g[w2 + h]) * error;
                outer += Math.abs(g[w2 + h]) * (Math.max(s, 0) + error);
            }
            bound[k] = 2 * (propagated + gamma(hidden + 1) * outer);
        }
        return bound;
    }

    @Test
    public void outputsMatchNumpyRuntime() {
        int batch = ((Number) spec.get("batch")).intValue();
        float[] input = TestSupport.readFloats(file((String) spec.get("input")));
        float[] expected = TestSupport.readFloats(file((String) spec.get("output")));
        assertArrayEquals(TestSupport.toInts(spec.get("input_shape")), model.inputShape());
        assertArrayEquals(TestSupport.toInts(spec.get("output_shape")), model.outputShape());
        float[] actual = model.run(input, batch);
        assertEquals("int32".equals(spec.get("dtype")), model.takesIds());
        if (model.takesIds()) { // token ids (whole numbers in the float file): the int[] API agrees
            int[] ids = new int[input.length];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = (int) input[i];
            }
            assertArrayEquals(actual, model.run(ids, batch), 0f);
            // the fixtures' tables are hashed (compress made them HashedEmbedding): read row by row
            assertFalse(model.gatheredTables().isEmpty());
            Model whole = new Model(model.file(), false); // tables decoded whole: the same bits
            assertArrayEquals(actual, whole.run(ids, batch), 0f);
        }
        assertEquals(expected.length, actual.length);
        double worst = 0;
        for (int i = 0; i < expected.length; i++) {
            double diff = Math.abs((double) actual[i] - expected[i]);
            assertFalse("NaN at " + i, Double.isNaN(diff));
            worst = Math.max(worst, diff);
        }
        assertTrue(spec.get("name") + ": max |java - numpy| = " + worst, worst <= OUTPUT_TOLERANCE);
    }

    @Test
    public void goldenOutputsPass() {
        boolean hasGolden = (Boolean) spec.get("has_golden");
        assertEquals(hasGolden, model.hasGolden());
        if (!hasGolden) {
            try {
                model.checkGolden(GOLDEN_ATOL, GOLDEN_RTOL);
                throw new AssertionError("checkGolden without golden data must throw");
            } catch (IllegalStateException expected) {
                return;
            }
        }
        Model.GoldenCheck check = model.checkGolden(GOLDEN_ATOL, GOLDEN_RTOL);
        assertTrue(spec.get("name") + ": " + check, check.passed());
        assertEquals(model.file().goldenCount(), check.samples());
        // A wrong model must fail the same check: perturb one output tolerance-wise impossible value.
        Model.GoldenCheck strict = model.checkGolden(0, 0);
        assertEquals(strict.maxAbsError() == 0, strict.passed());
    }

    /** Each sample computed alone gives the same bits as inside the batch. */
    @Test
    public void batchItemsAreIndependent() {
        int batch = ((Number) spec.get("batch")).intValue();
        float[] input = TestSupport.readFloats(file((String) spec.get("input")));
        float[] all = model.run(input, batch);
        int in = input.length / batch;
        int out = all.length / batch;
        for (int n = 0; n < batch; n++) {
            float[] one = model.run(Arrays.copyOfRange(input, n * in, (n + 1) * in), 1);
            float[] slice = Arrays.copyOfRange(all, n * out, (n + 1) * out);
            assertArrayEquals("sample " + n, slice, one, 0f);
        }
    }

    @Test(expected = IllegalArgumentException.class)
    public void wrongInputLengthIsRejected() {
        model.run(new float[TestSupport.numel(model.inputShape()) + 1], 1);
    }

    @Test
    public void metadataSummary() {
        HpkFile f = model.file();
        assertEquals(spec.get("space_dtypes").toString(), sortedSpaceDtypes(f).toString());
        assertTrue(f.producer().startsWith("hashpack"));
        assertFalse(f.nodes().isEmpty());
    }

    private static List<String> sortedSpaceDtypes(HpkFile f) {
        List<String> out = new ArrayList<>();
        for (Space s : f.spaces().values()) {
            if (!out.contains(s.dtype())) {
                out.add(s.dtype());
            }
        }
        java.util.Collections.sort(out);
        return out;
    }
}
