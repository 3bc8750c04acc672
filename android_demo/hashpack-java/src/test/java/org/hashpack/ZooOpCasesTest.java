package org.hashpack;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.junit.runners.Parameterized;
import org.junit.runners.Parameterized.Parameters;

/**
 * Every case of tests/zoo_op_cases.py and tests/tx_op_cases.py (one tiny graph per zoo or
 * transformer op configuration, the tables every backend runs): Java's outputs within 1e-5 of the
 * numpy runtime's on a random batch (int32 token ids through {@link Model#run(int[], int)}), and
 * the golden outputs PyTorch recorded in the file reproduced.
 */
@RunWith(Parameterized.class)
public class ZooOpCasesTest {
    @Parameters(name = "{0}")
    public static Collection<Object[]> cases() {
        Map<String, Object> manifest = TestSupport.readJson(new File(TestSupport.fixtures(), "manifest.json"));
        List<Object[]> out = new ArrayList<>();
        for (Object c : (List<?>) manifest.get("op_cases")) {
            Map<?, ?> spec = (Map<?, ?>) c;
            out.add(new Object[] {spec.get("id"), spec});
        }
        return out;
    }

    private final Map<?, ?> spec;
    private final Model model;

    public ZooOpCasesTest(String id, Map<?, ?> spec) throws HpkFormatException {
        this.spec = spec;
        this.model = Model.load(file((String) spec.get("hpk")));
    }

    private static File file(String name) {
        return new File(TestSupport.fixtures(), name);
    }

    @Test
    public void matchesNumpyAndTorch() {
        assertArrayEquals(TestSupport.toInts(spec.get("input_shape")), model.inputShape());
        assertArrayEquals(TestSupport.toInts(spec.get("output_shape")), model.outputShape());
        int batch = ((Number) spec.get("batch")).intValue();
        float[] expected = TestSupport.readFloats(file((String) spec.get("output")));
        File input = file((String) spec.get("input"));
        boolean ids = "int32".equals(spec.get("dtype"));
        assertEquals(ids, model.takesIds());
        float[] actual = ids ? model.run(TestSupport.readInts(input), batch)
                : model.run(TestSupport.readFloats(input), batch);
        assertEquals(expected.length, actual.length);
        double worst = 0;
        for (int i = 0; i < expected.length; i++) {
            double diff = Math.abs((double) actual[i] - expected[i]);
            assertFalse("NaN at " + i, Double.isNaN(diff));
            worst = Math.max(worst, diff);
        }
        assertTrue(spec.get("id") + ": max |java - numpy| = " + worst, worst <= FixtureModelsTest.OUTPUT_TOLERANCE);
        Model.GoldenCheck golden = model.checkGolden(FixtureModelsTest.GOLDEN_ATOL, FixtureModelsTest.GOLDEN_RTOL);
        assertTrue(spec.get("id") + ": " + golden, golden.passed());
    }
}
