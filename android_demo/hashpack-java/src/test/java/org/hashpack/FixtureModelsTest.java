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
 * Every model written by tests/java_fixtures.py: decompressed weights bit-identical to the numpy
 * runtime's, outputs within 1e-5 of numpy's, golden outputs (PyTorch's) reproduced.
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

    @Test
    public void weightsAreBitIdenticalToNumpy() {
        float[] all = TestSupport.readFloats(file((String) spec.get("weights")));
        List<?> params = (List<?>) spec.get("params");
        assertEquals(params.size(), model.weights().size());
        long total = 0;
        for (Object p : params) {
            Map<?, ?> param = (Map<?, ?>) p;
            String name = (String) param.get("name");
            Tensor weight = model.weight(name);
            assertArrayEquals(name, TestSupport.toInts(param.get("shape")), weight.shape());
            int offset = ((Number) param.get("offset")).intValue();
            int count = ((Number) param.get("count")).intValue();
            float[] ours = weight.data();
            assertEquals(name, count, ours.length);
            for (int i = 0; i < count; i++) {
                int expected = Float.floatToRawIntBits(all[offset + i]);
                int actual = Float.floatToRawIntBits(ours[i]);
                if (expected != actual) {
                    throw new AssertionError(String.format("%s[%d]: java %s (0x%08x), numpy %s (0x%08x)", name, i,
                            ours[i], actual, all[offset + i], expected));
                }
            }
            total += count;
        }
        assertEquals(total, model.file().virtualParameterCount());
    }

    @Test
    public void outputsMatchNumpyRuntime() {
        int batch = ((Number) spec.get("batch")).intValue();
        float[] input = TestSupport.readFloats(file((String) spec.get("input")));
        float[] expected = TestSupport.readFloats(file((String) spec.get("output")));
        assertArrayEquals(TestSupport.toInts(spec.get("input_shape")), model.inputShape());
        assertArrayEquals(TestSupport.toInts(spec.get("output_shape")), model.outputShape());
        float[] actual = model.run(input, batch);
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
