package org.hashpack;

import static org.hashpack.TestSupport.assertFormatError;
import static org.hashpack.TestSupport.ints;
import static org.hashpack.TestSupport.list;
import static org.hashpack.TestSupport.obj;
import static org.junit.Assert.assertArrayEquals;

import java.math.BigInteger;
import java.util.Map;
import org.junit.Test;

/**
 * The reader's rules for the zoo ops (docs/FORMAT.md §5): every invalid attr or shape is an
 * HpkFormatException naming the node, raised while reading (before any kernel or weight is
 * allocated), hostile sizes included.
 */
public class ZooGraphRulesTest {
    private static void rejects(TestHpk hpk, String... fragments) {
        assertFormatError(hpk::read, fragments);
    }

    private static TestHpk single(int[] input, String op, Map<String, Object> attrs, int... output) {
        return TestHpk.builder(input).node(op, "n", list("x"), obj(), attrs).output("n", output);
    }

    private static int[] shapeOf(TestHpk hpk) throws HpkFormatException {
        return hpk.read().valueShape("n");
    }

    @Test
    public void activationsTakeNoAttrsAndOneInput() throws Exception {
        for (String op : new String[] {"Hardswish", "Hardsigmoid", "Silu"}) {
            assertArrayEquals(new int[] {2, 3}, shapeOf(single(new int[] {2, 3}, op, obj(), 2, 3)));
            rejects(single(new int[] {2, 3}, op, obj("alpha", 1), 2, 3),
                    "node 'n' (" + op + "): unexpected attr 'alpha'");
            rejects(TestHpk.builder(2).node(op, "n", list("x", "x"), obj(), obj()).output("n", 2),
                    "node 'n' (" + op + "): takes 1 input(s), got 2");
        }
    }

    @Test
    public void mulBroadcastRules() throws Exception {
        TestHpk both = TestHpk.builder(2, 3, 3).node("GlobalAvgPool", "g", "x")
                .node("Mul", "n", list("g", "x"), obj(), obj()).output("n", 2, 3, 3);
        assertArrayEquals(new int[] {2, 3, 3}, shapeOf(both)); // either side may broadcast
        TestHpk rank = TestHpk.builder(2, 3, 3).node("Flatten", "f", list("x"), obj(), obj("start_dim", 1))
                .node("Mul", "n", list("x", "f"), obj(), obj()).output("n", 2, 3, 3);
        rejects(rank, "node 'n' (Mul): inputs [N, 2, 3, 3] and [N, 18] do not broadcast together");
        TestHpk sizes = TestHpk.builder(4, 3).node("Slice", "s", list("x"), obj(), obj("axis", 1, "start", 0, "end", 2))
                .node("Mul", "n", list("x", "s"), obj(), obj()).output("n", 4, 3);
        rejects(sizes, "inputs [N, 4, 3] and [N, 2, 3] do not broadcast together");
        rejects(TestHpk.builder(2).node("Mul", "n", "x").output("n", 2), "node 'n' (Mul): takes 2 input(s), got 1");
        // [N, 2^14, 1] * [N, 1, 2^15]: a 2^29-element output from two small inputs
        int a = 1 << 14;
        int b = 1 << 15;
        TestHpk big = TestHpk.builder(a + b)
                .node("Slice", "sa", list("x"), obj(), obj("axis", 1, "start", 0, "end", a))
                .node("Slice", "sb", list("x"), obj(), obj("axis", 1, "start", a, "end", a + b))
                .node("Reshape", "ra", list("sa"), obj(), obj("shape", ints(a, 1)))
                .node("Reshape", "rb", list("sb"), obj(), obj("shape", ints(1, b)))
                .node("Mul", "n", list("ra", "rb"), obj(), obj()).output("n", a, b);
        rejects(big, "node 'n' (Mul): the output would hold 536870912 elements per sample (limit 268435456)");
    }

    @Test
    public void adaptivePoolRules() throws Exception {
        for (String op : new String[] {"AdaptiveAvgPool2d", "AdaptiveMaxPool2d"}) {
            assertArrayEquals(new int[] {2, 7, 7}, shapeOf(single(new int[] {2, 2, 2}, op, obj("output", ints(7, 7)),
                    2, 7, 7)));
            rejects(single(new int[] {2, 5, 5}, op, obj("output", ints(0, 3)), 2, 1, 3),
                    "node 'n' (" + op + "): output [0, 3] must be positive");
            // windows of a tall output over a wide input: bounded as the numpy runtime gathers them
            rejects(single(new int[] {1, 2, 1 << 16}, op, obj("output", ints(1 << 12, 1)), 1, 1 << 12, 1),
                    "the gathered row windows would hold 536870912 elements per sample");
            rejects(single(new int[] {2, 5, 5}, op, obj("output", ints(-1, 3)), 2, 1, 3),
                    "attr 'output' = [-1, 3] is not a valid pair");
            rejects(single(new int[] {2, 5, 5}, op, obj("output", ints(3)), 2, 3, 3),
                    "attr 'output' = [3] is not a valid pair");
            rejects(single(new int[] {2, 5, 5}, op, obj("output", 3), 2, 3, 3),
                    "attr 'output' = 3 is not a valid pair");
            rejects(single(new int[] {2, 5, 5}, op, obj(), 2, 3, 3), "missing attr 'output'");
            rejects(single(new int[] {10}, op, obj("output", ints(1, 1)), 10, 1, 1),
                    "input [N, 10] has rank 2, expected 4");
            // a hostile output size: rejected by the reader, nothing allocated
            rejects(single(new int[] {2, 5, 5}, op, obj("output", ints(Integer.MAX_VALUE, Integer.MAX_VALUE)), 2, 1, 1),
                    "node 'n' (" + op + "): the pooled output would hold", "limit 268435456");
        }
    }

    private static Map<String, Object> pool(int k, int s, int p, boolean avg, Object ceil) {
        Map<String, Object> attrs = avg
                ? obj("kernel", ints(k, k), "stride", ints(s, s), "padding", ints(p, p), "count_include_pad", true)
                : obj("kernel", ints(k, k), "stride", ints(s, s), "padding", ints(p, p), "dilation", ints(1, 1));
        attrs.put("ceil_mode", ceil);
        return attrs;
    }

    @Test
    public void ceilModeRules() throws Exception {
        for (boolean avg : new boolean[] {false, true}) {
            String op = avg ? "AvgPool2d" : "MaxPool2d";
            // absent and false: floor; true: torch's ceil rule (6 -> 3 windows of 3 with stride 2)
            Map<String, Object> absent = pool(3, 2, 0, avg, false);
            absent.remove("ceil_mode");
            assertArrayEquals(new int[] {1, 2, 2}, shapeOf(single(new int[] {1, 6, 6}, op, absent, 1, 2, 2)));
            assertArrayEquals(new int[] {1, 2, 2}, shapeOf(single(new int[] {1, 6, 6}, op, pool(3, 2, 0, avg, false),
                    1, 2, 2)));
            assertArrayEquals(new int[] {1, 3, 3}, shapeOf(single(new int[] {1, 6, 6}, op, pool(3, 2, 0, avg, true),
                    1, 3, 3)));
            // the kernel must fit the padded input in ceil mode too (torch would pool 2x2 with 3x3)
            rejects(single(new int[] {1, 2, 2}, op, pool(3, 2, 0, avg, true), 1, 1, 1),
                    "kernel [3, 3] (dilation [1, 1]) is larger than the padded input [N, 1, 2, 2] + padding [0, 0]");
            rejects(single(new int[] {1, 2, 2}, op, pool(3, 2, 0, avg, false), 1, 1, 1),
                    "kernel [3, 3] (dilation [1, 1]) is larger than the padded input [N, 1, 2, 2] + padding [0, 0]");
            rejects(single(new int[] {1, 6, 6}, op, pool(3, 2, 0, avg, 1), 1, 3, 3),
                    "node 'n' (" + op + "): attr 'ceil_mode' = 1 is not a valid bool");
            rejects(single(new int[] {1, 6, 6}, op, pool(3, 2, 0, avg, null), 1, 3, 3),
                    "attr 'ceil_mode' = null is not a valid bool");
            rejects(single(new int[] {1, 6, 6}, op, pool(3, 2, 0, avg, "true"), 1, 3, 3),
                    "attr 'ceil_mode' = true is not a valid bool");
            rejects(single(new int[] {1, 6, 6}, op, pool(3, 1, 2, avg, true), 1, 3, 3),
                    "padding [2, 2] exceeds half the kernel [3, 3]");
            // hostile: the last ceil-mode window reaching far past a huge padded input
            Map<String, Object> hostile = pool(3, 2, 0, avg, true);
            // (16000 + 6001)^2 cells: 3 windows of 8001 with stride 7000 over 16000
            hostile.put("kernel", ints(8001, 8001));
            hostile.put("stride", ints(7000, 7000));
            rejects(single(new int[] {1, 16000, 16000}, op, hostile, 1, 3, 3),
                    "node 'n' (" + op + "): the padded input would hold", "(limit 268435456)");
        }
    }

    @Test
    public void transposeRules() throws Exception {
        assertArrayEquals(new int[] {4, 2, 3}, shapeOf(single(new int[] {2, 3, 4}, "Transpose",
                obj("perm", ints(0, 3, 1, 2)), 4, 2, 3)));
        rejects(single(new int[] {2, 3, 4}, "Transpose", obj("perm", ints(1, 0, 2, 3)), 3, 2, 4),
                "node 'n' (Transpose): perm [1, 0, 2, 3] is not a permutation of 0..3",
                "that keeps the batch axis 0 first");
        rejects(single(new int[] {2, 3, 4}, "Transpose", obj("perm", ints(0, 1, 1, 2)), 2, 3, 4),
                "perm [0, 1, 1, 2] is not a permutation of 0..3");
        rejects(single(new int[] {2, 3, 4}, "Transpose", obj("perm", ints(0, 1, 2, 4)), 2, 3, 4),
                "perm [0, 1, 2, 4] is not a permutation of 0..3");
        rejects(single(new int[] {2, 3, 4}, "Transpose", obj("perm", ints(0, -1, 2, 3)), 2, 3, 4),
                "perm [0, -1, 2, 3] is not a permutation");
        rejects(single(new int[] {2, 3, 4}, "Transpose", obj("perm", ints()), 2, 3, 4), "perm [] is not a permutation");
        rejects(single(new int[] {2, 3, 4}, "Transpose", obj("perm", ints(0, 2, 1)), 3, 2, 4),
                "perm [0, 2, 1] has 3 axes, input [N, 2, 3, 4] has rank 4");
        rejects(single(new int[] {2, 3, 4}, "Transpose", obj("perm", ints(0, 1, 2, 3, 4, 5, 6, 7, 8)), 2, 3, 4),
                "attr 'perm' = [0, 1, 2, 3, 4, 5, 6, 7, 8] is not a valid ints");
        rejects(single(new int[] {2, 3, 4}, "Transpose", obj("perm", list(0, 2.0, 1, 3)), 2, 3, 4),
                "attr 'perm'", "is not a valid ints");
    }

    @Test
    public void sliceRules() throws Exception {
        assertArrayEquals(new int[] {2, 2, 4}, shapeOf(single(new int[] {2, 3, 4}, "Slice",
                obj("axis", 2, "start", 1, "end", 3), 2, 2, 4)));
        rejects(single(new int[] {2, 3, 4}, "Slice", obj("axis", 0, "start", 0, "end", 1), 1, 3, 4),
                "node 'n' (Slice): axis 0 is not a non-batch axis (at least 1)");
        rejects(single(new int[] {2, 3, 4}, "Slice", obj("axis", 4, "start", 0, "end", 1), 2, 3, 4),
                "axis 4 is out of range [1, 4) for input [N, 2, 3, 4]");
        rejects(single(new int[] {2, 3, 4}, "Slice", obj("axis", 1, "start", 1, "end", 1), 1, 3, 4),
                "start 1 and end 1 do not satisfy 0 <= start < end");
        rejects(single(new int[] {2, 3, 4}, "Slice", obj("axis", 1, "start", -1, "end", 1), 2, 3, 4),
                "start -1 and end 1 do not satisfy 0 <= start < end");
        rejects(single(new int[] {2, 3, 4}, "Slice", obj("axis", 3, "start", 2, "end", 5), 2, 3, 3),
                "end 5 is past dimension 3 of input [N, 2, 3, 4]");
        rejects(single(new int[] {2, 3, 4}, "Slice", obj("axis", 3, "start", 0), 2, 3, 4), "missing attr 'end'");
        rejects(single(new int[] {2, 3, 4}, "Slice", obj("axis", 3, "start", 0, "end", BigInteger.ONE.shiftLeft(31)),
                2, 3, 4), "attr 'end' = 2147483648 is not a valid int");
    }

    @Test
    public void meanRules() throws Exception {
        assertArrayEquals(new int[] {2}, shapeOf(single(new int[] {2, 3, 4}, "Mean",
                obj("dims", ints(2, 3), "keepdim", false), 2)));
        assertArrayEquals(new int[] {2, 1, 1}, shapeOf(single(new int[] {2, 3, 4}, "Mean",
                obj("dims", ints(3, 2), "keepdim", true), 2, 1, 1)));
        assertArrayEquals(new int[] {}, shapeOf(single(new int[] {2, 3}, "Mean",
                obj("dims", ints(1, 2), "keepdim", false))));
        rejects(single(new int[] {2, 3, 4}, "Mean", obj("dims", ints(0, 2), "keepdim", true), 1, 1, 4),
                "node 'n' (Mean): dims [0, 2] are not distinct non-batch axes (at least one, each >= 1)");
        rejects(single(new int[] {2, 3, 4}, "Mean", obj("dims", ints(2, 2), "keepdim", true), 2, 1, 4),
                "dims [2, 2] are not distinct non-batch axes");
        rejects(single(new int[] {2, 3, 4}, "Mean", obj("dims", ints(), "keepdim", true), 2, 3, 4),
                "dims [] are not distinct non-batch axes");
        rejects(single(new int[] {2, 3, 4}, "Mean", obj("dims", ints(-1), "keepdim", true), 2, 3, 1),
                "dims [-1] are not distinct non-batch axes");
        rejects(single(new int[] {2, 3, 4}, "Mean", obj("dims", ints(4), "keepdim", true), 2, 3, 4),
                "dim 4 is out of range [1, 4) for input [N, 2, 3, 4]");
        rejects(single(new int[] {2, 3, 4}, "Mean", obj("dims", ints(1)), 3, 4), "missing attr 'keepdim'");
        rejects(single(new int[] {2, 3, 4}, "Mean", obj("dims", ints(1), "keepdim", 0), 3, 4),
                "attr 'keepdim' = 0 is not a valid bool");
    }
}
