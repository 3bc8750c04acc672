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
 * The graph rules of docs/FORMAT.md §5 as the reader enforces them (with the Python reader's shape
 * rules and limits), on small files built from scratch: every violation is a format error naming
 * the node.
 */
public class GraphRulesTest {
    private static void rejects(TestHpk hpk, String... fragments) {
        assertFormatError(hpk::read, fragments);
    }

    private static TestHpk single(int[] input, String op, Map<String, Object> attrs, int... output) {
        return TestHpk.builder(input).node(op, "n", list("x"), obj(), attrs).output("n", output);
    }

    private static Map<String, Object> pool(int k, int s, int p, boolean avg) {
        return avg ? obj("kernel", ints(k, k), "stride", ints(s, s), "padding", ints(p, p), "count_include_pad", true)
                : obj("kernel", ints(k, k), "stride", ints(s, s), "padding", ints(p, p), "dilation", ints(1, 1));
    }

    @Test
    public void validSmallGraphsRead() throws Exception {
        HpkFile f = single(new int[] {2, 5, 5}, "MaxPool2d", pool(3, 2, 1, false), 2, 3, 3).read();
        assertArrayEquals(new int[] {2, 3, 3}, f.valueShape("n"));
        single(new int[] {2, 5, 5}, "AvgPool2d", pool(3, 2, 1, true), 2, 3, 3).read();
    }

    @Test
    public void poolPaddingAtMostHalfTheKernel() {
        rejects(single(new int[] {2, 5, 5}, "MaxPool2d", pool(3, 1, 2, false), 2, 7, 7),
                "node 'n' (MaxPool2d): padding [2, 2] exceeds half the kernel [3, 3]");
        rejects(single(new int[] {2, 5, 5}, "AvgPool2d", pool(2, 1, 2, true), 2, 8, 8),
                "node 'n' (AvgPool2d): padding [2, 2] exceeds half the kernel [2, 2]");
    }

    @Test
    public void poolWindowMustFit() {
        rejects(single(new int[] {2, 5, 5}, "MaxPool2d", pool(7, 1, 0, false), 2, 1, 1),
                "kernel [7, 7] (dilation [1, 1]) is larger than the padded input [N, 2, 5, 5] + padding [0, 0]");
        rejects(single(new int[] {2, 5, 5}, "MaxPool2d", pool(2, 0, 0, false), 2, 1, 1),
                "kernel [2, 2], stride [0, 0] and dilation [1, 1] must be positive");
        rejects(single(new int[] {10}, "MaxPool2d", pool(1, 1, 0, false), 10), "input [N, 10] has rank 2, expected 4");
    }

    @Test
    public void reshapeRules() throws Exception {
        single(new int[] {2, 3, 4}, "Reshape", obj("shape", ints(6, 4)), 6, 4).read();
        rejects(single(new int[] {2, 3, 4}, "Reshape", obj("shape", ints(-1, 4)), 6, 4),
                "shape [-1, 4] is not at most 7 positive dimensions (the batch excluded)");
        rejects(single(new int[] {2, 3, 4}, "Reshape", obj("shape", ints(5, 5)), 5, 5),
                "cannot reshape input [N, 2, 3, 4] (24 per sample) to [N, *[5, 5]]");
        rejects(single(new int[] {24}, "Reshape", obj("shape", ints(1, 1, 1, 1, 1, 1, 1, 24)), 24),
                "is not at most 7 positive dimensions");
    }

    @Test
    public void flattenRules() throws Exception {
        single(new int[] {2, 3, 4}, "Flatten", obj("start_dim", 2), 2, 12).read();
        rejects(single(new int[] {2, 3, 4}, "Flatten", obj("start_dim", 0), 24),
                "start_dim 0 is out of range [1, 4) for input [N, 2, 3, 4]");
        rejects(single(new int[] {2, 3, 4}, "Flatten", obj("start_dim", 4), 24), "start_dim 4 is out of range");
        rejects(single(new int[] {2, 3, 4}, "Flatten", obj("start_dim", BigInteger.ONE.shiftLeft(40)), 24),
                "attr 'start_dim' = 1099511627776 is not a valid int");
    }

    @Test
    public void concatRules() {
        TestHpk hpk = TestHpk.builder(2, 3).node("Relu", "r", "x")
                .node("Concat", "c", list("x", "r"), obj(), obj("axis", 0)).output("c", 2, 3);
        rejects(hpk, "node 'c' (Concat): axis 0 is out of range [1, 3) for input [N, 2, 3]");
        hpk = TestHpk.builder(2, 3).node("Flatten", "f", list("x"), obj(), obj("start_dim", 1))
                .node("Concat", "c", list("x", "f"), obj(), obj("axis", 1)).output("c", 8, 3);
        rejects(hpk, "input [N, 6] does not match [N, 2, 3] outside axis 1");
        hpk = TestHpk.builder(2, 3).node("Concat", "c", list(), obj(), obj("axis", 1)).output("c", 2, 3);
        rejects(hpk, "takes at least one input");
    }

    @Test
    public void softmaxAxisRange() throws Exception {
        single(new int[] {4}, "Softmax", obj("axis", -1), 4).read();
        single(new int[] {4}, "Softmax", obj("axis", 1), 4).read();
        // across the batch would mix samples (FORMAT.md §5): rejected, counted from either end
        rejects(single(new int[] {4}, "Softmax", obj("axis", 0), 4), "axis 0 is the batch dimension (rank 2)");
        rejects(single(new int[] {4}, "Softmax", obj("axis", -2), 4), "axis -2 is the batch dimension (rank 2)");
        rejects(single(new int[] {4}, "Softmax", obj("axis", 2), 4), "axis 2 is out of range for rank 2");
        rejects(single(new int[] {4}, "Softmax", obj("axis", -3), 4), "axis -3 is out of range for rank 2");
    }

    @Test
    public void addBroadcastRules() throws Exception {
        TestHpk ok = TestHpk.builder(2, 3, 3).node("GlobalAvgPool", "g", "x")
                .node("Add", "a", list("x", "g"), obj(), obj()).output("a", 2, 3, 3);
        ok.read();
        TestHpk reversed = TestHpk.builder(2, 3, 3).node("GlobalAvgPool", "g", "x")
                .node("Add", "a", list("g", "x"), obj(), obj()).output("a", 2, 3, 3);
        rejects(reversed, "node 'a' (Add): second input [N, 2, 3, 3] does not broadcast to the first [N, 2, 1, 1]");
        TestHpk ranks = TestHpk.builder(2, 3, 3).node("Flatten", "f", list("x"), obj(), obj("start_dim", 1))
                .node("Add", "a", list("x", "f"), obj(), obj()).output("a", 2, 3, 3);
        rejects(ranks, "second input [N, 18] does not broadcast to the first [N, 2, 3, 3]");
    }

    @Test
    public void batchNormRules() {
        TestHpk hpk = TestHpk.builder(2).dense("w", new int[] {2}, 1, 1).dense("b", new int[] {2}, 0, 0)
                .dense("m", new int[] {2}, 0, 0).dense("v", new int[] {3}, 1, 1, 1)
                .node("BatchNorm", "bn", list("x"), obj("weight", "w", "bias", "b", "running_mean", "m",
                        "running_var", "v"), obj("eps", 1e-5))
                .output("bn", 2);
        rejects(hpk, "weight, bias, running_mean and running_var differ in shape: weight [2], bias [2], "
                + "running_mean [2], running_var [3]");
        hpk = TestHpk.builder(2).dense("w", new int[] {2}, 1, 1).dense("b", new int[] {2}, 0, 0)
                .dense("m", new int[] {2}, 0, 0).dense("v", new int[] {2}, 1, 1)
                .node("BatchNorm", "bn", list("x"), obj("weight", "w", "bias", "b", "running_mean", "m",
                        "running_var", "v"), obj("eps", -1e-5))
                .output("bn", 2);
        rejects(hpk, "eps -1.0E-5 is negative");
        hpk.node(0).put("attrs", obj("eps", 1e39));
        rejects(hpk, "attr 'eps' = 1.0E39 is not a valid float");
        hpk.node(0).put("attrs", obj("eps", "0.001"));
        rejects(hpk, "attr 'eps' = 0.001 is not a valid float");
        hpk.node(0).put("attrs", obj("eps", 0));
        try {
            hpk.read(); // an integer eps is a number
        } catch (HpkFormatException e) {
            throw new AssertionError(e);
        }
        hpk.meta.put("inputs", list(obj("name", "x", "shape", list(null, 2, 3))));
        hpk.meta.put("outputs", list(obj("name", "bn", "shape", list(null, 2, 3))));
        rejects(hpk, "input [N, 2, 3] has rank 3, expected 2 or 4");
    }

    @Test
    public void convRules() {
        float[] w = new float[4 * 2 * 3 * 3];
        TestHpk hpk = TestHpk.builder(4, 5, 5).dense("w", new int[] {4, 2, 3, 3}, w)
                .node("Conv2d", "c", list("x"), obj("weight", "w"), obj("stride", ints(1, 1), "padding", ints(0, 0),
                        "dilation", ints(1, 1), "groups", 1))
                .output("c", 4, 3, 3);
        rejects(hpk, "node 'c' (Conv2d): input [N, 4, 5, 5] has 4 channels, weight expects 2");
        hpk.attrs(0).put("groups", BigInteger.valueOf(2));
        try {
            hpk.read();
        } catch (HpkFormatException e) {
            throw new AssertionError(e);
        }
        hpk.attrs(0).put("dilation", ints(3, 3));
        rejects(hpk, "kernel [3, 3] (dilation [3, 3]) is larger than the padded input [N, 4, 5, 5] + padding [0, 0]");
        hpk.attrs(0).put("dilation", ints(1, 1));
        hpk.attrs(0).put("groups", BigInteger.valueOf(3));
        rejects(hpk, "groups=3 does not divide 4 output channels");
        hpk.attrs(0).put("groups", BigInteger.ZERO);
        rejects(hpk, "groups=0 does not divide 4 output channels");
    }

    @Test
    public void linearNeedsRank2() {
        TestHpk hpk = TestHpk.builder(2, 3).dense("w", new int[] {4, 6}, new float[24])
                .node("Linear", "l", list("x"), obj("weight", "w"), obj()).output("l", 4);
        rejects(hpk, "node 'l' (Linear): input [N, 2, 3] has rank 3, expected 2");
    }

    @Test
    public void graphLimits() {
        rejects(TestHpk.builder((1 << 28) + 1).node("Relu", "r", "x").output("r", (1 << 28) + 1),
                "inputs: 268435457 elements per sample exceed the 268435456 limit");
        // three values of 2^27 elements: 1.5 x 2^28 per sample together
        rejects(TestHpk.builder(1 << 27).node("Relu", "a", "x").node("Relu", "b", "a").output("b", 1 << 27),
                "node 'b' (Relu): the graph needs more than 268435456 values or 17179869184 operations per sample");
        // 64 x 1024 x 1024 input, 64 x 64 max windows: about 2.4e11 comparisons
        TestHpk work = TestHpk.builder(64, 1024, 1024).node("MaxPool2d", "p", list("x"), obj(), obj("kernel",
                ints(64, 64), "stride", ints(1, 1), "padding", ints(0, 0), "dilation", ints(1, 1)))
                .output("p", 64, 961, 961);
        rejects(work, "node 'p' (MaxPool2d): the graph needs more than 268435456 values or 17179869184 operations");
        // an unfolded conv input beyond 2^28 elements
        TestHpk unfolded = TestHpk.builder(64, 256, 256).dense("w", new int[] {1, 64, 9, 9}, new float[64 * 81])
                .node("Conv2d", "c", list("x"), obj("weight", "w"), obj("stride", ints(1, 1), "padding", ints(4, 4),
                        "dilation", ints(1, 1), "groups", 1))
                .output("c", 1, 256, 256);
        rejects(unfolded, "node 'c' (Conv2d): the unfolded input would hold 339738624 elements per sample");
    }
}
