package org.hashpack;

import static org.hashpack.TestSupport.assertFormatError;
import static org.hashpack.TestSupport.list;
import static org.hashpack.TestSupport.obj;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;

import java.util.Map;
import org.junit.Test;

/**
 * The reader's rules for the transformer ops and int32 inputs (docs/FORMAT.md §3, §5): every
 * invalid attr, param or shape is an HpkFormatException naming the node, raised while reading
 * (before any weight is decoded or kernel allocated), hostile sizes included.
 */
public class TxGraphRulesTest {
    private static void rejects(TestHpk hpk, String... fragments) {
        assertFormatError(hpk::read, fragments);
    }

    private static TestHpk single(int[] input, String op, Map<String, Object> attrs, int... output) {
        return TestHpk.builder(input).node(op, "n", list("x"), obj(), attrs).output("n", output);
    }

    private static int[] shapeOf(TestHpk hpk) throws HpkFormatException {
        return hpk.read().valueShape("n");
    }

    private static float[] zeros(int n) {
        return new float[n];
    }

    private static TestHpk layerNorm(int[] input, int[] weight, int[] bias, Map<String, Object> attrs) {
        TestHpk.Builder b = TestHpk.builder(input);
        Map<String, Object> params = obj();
        if (weight != null) {
            b.dense("w", weight, zeros(TestSupport.numel(weight)));
            params.put("weight", "w");
        }
        if (bias != null) {
            b.dense("b", bias, zeros(TestSupport.numel(bias)));
            params.put("bias", "b");
        }
        return b.node("LayerNorm", "n", list("x"), params, attrs).output("n", input);
    }

    @Test
    public void layerNormRules() throws Exception {
        int[] x = {4, 3, 5};
        assertArrayEquals(x, shapeOf(layerNorm(x, new int[] {3, 5}, new int[] {3, 5}, obj("dims", 2, "eps", 1e-5))));
        assertArrayEquals(x, shapeOf(layerNorm(x, null, null, obj("dims", 3, "eps", 0))));
        rejects(layerNorm(x, null, null, obj("dims", 0, "eps", 1e-5)), "node 'n' (LayerNorm): dims 0 must be >= 1");
        rejects(layerNorm(x, null, null, obj("dims", 4, "eps", 1e-5)),
                "node 'n' (LayerNorm): dims 4 must be in [1, 4) for input [N, 4, 3, 5]");
        rejects(layerNorm(x, null, null, obj("dims", 1, "eps", -1e-5)), "eps -1.0E-5 is negative");
        rejects(layerNorm(x, null, null, obj("dims", 1, "eps", 1e300)), "attr 'eps' = 1.0E300 is not a valid float");
        rejects(layerNorm(x, null, null, obj("dims", 1, "eps", true)), "attr 'eps' = true is not a valid float");
        rejects(layerNorm(x, null, null, obj("dims", 1)), "node 'n' (LayerNorm): missing attr 'eps'");
        rejects(layerNorm(x, new int[] {5}, null, obj("dims", 1, "eps", 1e-5)),
                "takes both weight and bias or neither");
        rejects(layerNorm(x, new int[] {5}, new int[] {5}, obj("dims", 2, "eps", 1e-5)),
                "weight [5] and bias [5] must both have the 2 normalized dims");
        rejects(layerNorm(x, new int[] {3, 5}, new int[] {15}, obj("dims", 2, "eps", 1e-5)),
                "weight [3, 5] and bias [15] must both have the 2 normalized dims");
        rejects(layerNorm(x, new int[] {4}, new int[] {4}, obj("dims", 1, "eps", 1e-5)),
                "node 'n' (LayerNorm): input [N, 4, 3, 5] does not end with the weight's [4]");
    }

    @Test
    public void geluRules() throws Exception {
        assertArrayEquals(new int[] {2, 3}, shapeOf(single(new int[] {2, 3}, "Gelu", obj("approximate", true), 2, 3)));
        rejects(single(new int[] {2, 3}, "Gelu", obj("approximate", 1), 2, 3),
                "node 'n' (Gelu): attr 'approximate' = 1 is not a valid bool");
        rejects(single(new int[] {2, 3}, "Gelu", obj("approximate", "tanh"), 2, 3), "is not a valid bool");
        rejects(single(new int[] {2, 3}, "Gelu", obj(), 2, 3), "node 'n' (Gelu): missing attr 'approximate'");
    }

    /** x {@code [N, 6, 4]} sliced into the two operands of a MatMul. */
    private static TestHpk matmul(int[] x, Map<String, Object> sliceA, Map<String, Object> sliceB, int... out) {
        return TestHpk.builder(x).node("Slice", "a", list("x"), obj(), sliceA)
                .node("Slice", "b", list("x"), obj(), sliceB)
                .node("MatMul", "n", list("a", "b"), obj(), obj()).output("n", out);
    }

    @Test
    public void matMulRules() throws Exception {
        int[] x = {6, 4};
        // a = x[:, 0:2] [N, 2, 4], b = x[:, 2:6] [N, 4, 4]
        assertArrayEquals(new int[] {2, 4}, shapeOf(matmul(x, obj("axis", 1, "start", 0, "end", 2),
                obj("axis", 1, "start", 2, "end", 6), 2, 4)));
        rejects(matmul(x, obj("axis", 1, "start", 0, "end", 2), obj("axis", 1, "start", 2, "end", 5), 2, 4),
                "node 'n' (MatMul): inputs [N, 2, 4] and [N, 3, 4] do not multiply");
        TestHpk rank2 = TestHpk.builder(4).node("MatMul", "n", list("x", "x"), obj(), obj()).output("n", 4);
        rejects(rank2, "node 'n' (MatMul): inputs [N, 4] and [N, 4] must have equal rank >= 3");
        TestHpk ranks = TestHpk.builder(2, 2)
                .node("Reshape", "r", list("x"), obj(), obj("shape", TestSupport.ints(2, 2, 1)))
                .node("MatMul", "n", list("x", "r"), obj(), obj()).output("n", 2, 1);
        rejects(ranks, "inputs [N, 2, 2] and [N, 2, 2, 1] must have equal rank >= 3");
        TestHpk middle = TestHpk.builder(2, 3, 3)
                .node("Slice", "s", list("x"), obj(), obj("axis", 1, "start", 0, "end", 1))
                .node("MatMul", "n", list("x", "s"), obj(), obj()).output("n", 2, 3, 3);
        rejects(middle, "inputs [N, 2, 3, 3] and [N, 1, 3, 3] do not multiply");
        rejects(TestHpk.builder(2, 2).node("MatMul", "n", "x").output("n", 2, 2),
                "node 'n' (MatMul): takes 2 input(s), got 1");
    }

    private static TestHpk attention(int[] q, int[] k, int[] v, Map<String, Object> attrs, int... out) {
        // three Constant values of the wanted shapes (x only gives the batch)
        return TestHpk.builder(1).dense("q", q, zeros(TestSupport.numel(q))).dense("k", k, zeros(TestSupport.numel(k)))
                .dense("v", v, zeros(TestSupport.numel(v)))
                .node("Constant", "q", list("x"), obj("value", "q"), obj())
                .node("Constant", "k", list("x"), obj("value", "k"), obj())
                .node("Constant", "v", list("x"), obj("value", "v"), obj())
                .node("Attention", "n", list("q", "k", "v"), obj(), attrs).output("n", out);
    }

    @Test
    public void attentionRules() throws Exception {
        Map<String, Object> ok = obj("scale", 0.5, "causal", false);
        assertArrayEquals(new int[] {2, 3, 5}, shapeOf(attention(new int[] {2, 3, 4}, new int[] {2, 7, 4},
                new int[] {2, 7, 5}, obj("scale", -2, "causal", true), 2, 3, 5)));
        rejects(attention(new int[] {2, 3, 4}, new int[] {2, 7, 4}, new int[] {2, 6, 5}, ok, 2, 3, 5),
                "node 'n' (Attention): q [N, 2, 3, 4], k [N, 2, 7, 4], v [N, 2, 6, 5] do not fit");
        rejects(attention(new int[] {2, 3, 4}, new int[] {2, 7, 3}, new int[] {2, 7, 5}, ok, 2, 3, 5), "do not fit");
        rejects(attention(new int[] {1, 3, 4}, new int[] {2, 7, 4}, new int[] {2, 7, 5}, ok, 1, 3, 5), "do not fit");
        rejects(attention(new int[] {3, 4}, new int[] {3, 4}, new int[] {3, 4}, ok, 3, 4),
                "q [N, 3, 4], k [N, 3, 4], v [N, 3, 4] must each be [N, H, L, E]");
        rejects(attention(new int[] {2, 3, 4}, new int[] {2, 7, 4}, new int[] {2, 7, 5}, obj("scale", 0.5), 2, 3, 5),
                "node 'n' (Attention): missing attr 'causal'");
        rejects(attention(new int[] {2, 3, 4}, new int[] {2, 7, 4}, new int[] {2, 7, 5},
                obj("scale", "big", "causal", false), 2, 3, 5), "attr 'scale' = big is not a valid float");
        // [N, 1, 2^15, 1] attending over itself: 2^30 attention weights from a 2^15-element input
        int l = 1 << 15;
        TestHpk big = TestHpk.builder(1, l, 1)
                .node("Attention", "n", list("x", "x", "x"), obj(), ok).output("n", 1, l, 1);
        rejects(big, "node 'n' (Attention): the attention weights would hold 1073741824 elements per sample");
    }

    @Test
    public void constantRules() throws Exception {
        TestHpk ok = TestHpk.builder(2).dense("c", new int[] {1, 3}, zeros(3))
                .node("Constant", "n", list("x"), obj("value", "c"), obj()).output("n", 1, 3);
        assertArrayEquals(new int[] {1, 3}, shapeOf(ok));
        int[] eight = {1, 1, 1, 1, 1, 1, 1, 2};
        rejects(TestHpk.builder(2).dense("c", eight, zeros(2))
                .node("Constant", "n", list("x"), obj("value", "c"), obj()).output("n", 2),
                "node 'n' (Constant): value [1, 1, 1, 1, 1, 1, 1, 2] must have 1 to 7 dimensions");
        rejects(TestHpk.builder(2).node("Constant", "n", list("x"), obj(), obj()).output("n", 2),
                "node 'n' (Constant): missing param 'value'");
        rejects(TestHpk.builder(2).dense("c", new int[] {3}, zeros(3))
                .node("Constant", "n", list("x"), obj("value", "c"), obj("axis", 1)).output("n", 3),
                "node 'n' (Constant): unexpected attr 'axis'");
    }

    private static TestHpk embedding(int[] ids, String dtype, int vocab, int dim, Map<String, Object> attrs,
            int... out) {
        TestHpk.Builder b = TestHpk.builder(ids).dense("t", new int[] {vocab, dim}, zeros(vocab * dim));
        if (dtype != null) {
            b.dtype(dtype);
        }
        return b.node("Embedding", "n", list("x"), obj("weight", "t"), attrs).output("n", out);
    }

    @Test
    public void embeddingRules() throws Exception {
        assertArrayEquals(new int[] {3, 4, 2}, shapeOf(embedding(new int[] {3, 4}, "int32", 5, 2,
                obj("padding_idx", 4), 3, 4, 2)));
        assertEquals("int32", embedding(new int[] {3}, "int32", 5, 2, obj(), 3, 2).read().input().dtype());
        rejects(embedding(new int[] {3}, "int32", 5, 2, obj("padding_idx", 5), 3, 2),
                "node 'n' (Embedding): padding_idx 5 is not a row of the [5, …] table");
        rejects(embedding(new int[] {3}, "int32", 5, 2, obj("padding_idx", -1), 3, 2), "padding_idx -1 is not a row");
        rejects(embedding(new int[] {3}, "int32", 5, 2, obj("padding_idx", true), 3, 2),
                "attr 'padding_idx' = true is not a valid int");
        rejects(embedding(new int[] {3}, "int32", 5, 2, obj("max_norm", 1), 3, 2), "unexpected attr 'max_norm'");
        rejects(embedding(new int[] {3}, null, 5, 2, obj(), 3, 2),
                "node 'n' (Embedding): input 'x' is float32 but must be int32 token ids");
        rejects(embedding(new int[] {3}, "float32", 5, 2, obj(), 3, 2), "is float32 but must be int32 token ids");
        rejects(embedding(new int[] {3}, "int64", 5, 2, obj(), 3, 2),
                "inputs 'x': dtype 'int64' is not one of float32, int32");
        rejects(embedding(new int[] {1, 1, 1, 1, 1, 1, 2}, "int32", 5, 2, obj(), 2),
                "ids [N, 1, 1, 1, 1, 1, 1, 2] have more than 7 dimensions");
        TestHpk rank3 = TestHpk.builder(3).dtype("int32").dense("t", new int[] {5, 2, 1}, zeros(10))
                .node("Embedding", "n", list("x"), obj("weight", "t"), obj()).output("n", 3, 2);
        rejects(rank3, "node 'n' (Embedding): param 'weight' has shape [5, 2, 1], expected rank 2");
        // int32 values flow only into Embedding ids, and Embedding reads only the int32 graph input
        rejects(TestHpk.builder(3).dtype("int32").node("Relu", "n", "x").output("n", 3),
                "node 'n' (Relu): input 'x' is int32 but this op takes float32");
        TestHpk twice = TestHpk.builder(3).dtype("int32").dense("t", new int[] {5, 3}, zeros(15))
                .node("Embedding", "e", list("x"), obj("weight", "t"), obj())
                .node("Embedding", "n", list("e"), obj("weight", "t"), obj()).output("n", 3, 3, 3);
        rejects(twice, "node 'n' (Embedding): input 'e' is float32 but must be int32 token ids");
        TestHpk constant = TestHpk.builder(3).dtype("int32").dense("c", new int[] {2}, zeros(2))
                .node("Constant", "n", list("x"), obj("value", "c"), obj()).output("n", 2);
        rejects(constant, "node 'n' (Constant): input 'x' is int32 but this op takes float32");
    }

    @Test
    public void goldenIdsMustBeExactWholeNumbers() throws Exception {
        float[] table = new float[10];
        for (float bad : new float[] {0.5f, 16777218f, -16777218f}) {
            TestHpk hpk = TestHpk.builder(2).dtype("int32").dense("t", new int[] {5, 2}, table)
                    .node("Embedding", "n", list("x"), obj("weight", "t"), obj())
                    .golden(new int[] {1, 2}, new float[] {1, bad}, new int[] {1, 2, 2}, new float[4])
                    .output("n", 2, 2);
            rejects(hpk, "golden: inputs of the int32 graph input must be integers within +-16777216 (stored as F32)");
        }
        // out of the table's range but whole: a valid file (the range is a run-time check)
        TestHpk outOfRange = TestHpk.builder(2).dtype("int32").dense("t", new int[] {5, 2}, table)
                .node("Embedding", "n", list("x"), obj("weight", "t"), obj())
                .golden(new int[] {1, 2}, new float[] {1, 16777216f}, new int[] {1, 2, 2}, new float[4])
                .output("n", 2, 2);
        Model model = new Model(outOfRange.read());
        try {
            model.checkGolden(1e-4, 1e-4);
            throw new AssertionError("id 16777216 accepted");
        } catch (IdsOutOfRangeException e) {
            assertEquals("test.hpk: node 'n' (Embedding): token id 16777216 is outside the table's [0, 5) rows",
                    e.getMessage());
        }
    }

    @Test
    public void linearTakesAnyRankFromTwo() throws Exception {
        TestHpk rank4 = TestHpk.builder(2, 3, 4).dense("w", new int[] {5, 4}, zeros(20))
                .node("Linear", "n", list("x"), obj("weight", "w"), obj()).output("n", 2, 3, 5);
        assertArrayEquals(new int[] {2, 3, 5}, shapeOf(rank4));
        TestHpk wrong = TestHpk.builder(2, 3, 4).dense("w", new int[] {5, 3}, zeros(15))
                .node("Linear", "n", list("x"), obj("weight", "w"), obj()).output("n", 2, 3, 5);
        rejects(wrong, "node 'n' (Linear): input [N, 2, 3, 4] does not fit weight [5, 3]");
    }
}
