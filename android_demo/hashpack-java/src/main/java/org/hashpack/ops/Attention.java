package org.hashpack.ops;

import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/**
 * {@code Attention}: {@code F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)}
 * (no mask, no dropout) = {@code softmax(q kᵀ · scale) v} for q {@code [N, H, L, E]}, k
 * {@code [N, H, S, E]}, v {@code [N, H, S, Ev]}; {@code causal} keeps key j for query i iff j ≤ i
 * (torch's top-left {@code tril} mask). The scores are rounded to float32 before the scale, as the
 * numpy runtime computes them; dot products accumulate in float64.
 */
final class Attention extends Op {
    Attention() {
        super("Attention", 3);
        attr("scale", AttrKind.FLOAT);
        attr("causal", AttrKind.BOOL);
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException {
        int[] q = inputs.get(0);
        int[] k = inputs.get(1);
        int[] v = inputs.get(2);
        if (q.length != 3 || k.length != 3 || v.length != 3) {
            throw new ShapeException("q " + show(q) + ", k " + show(k) + ", v " + show(v)
                    + " must each be [N, H, L, E]");
        }
        if (!(q[0] == k[0] && k[0] == v[0] && k[1] == v[1] && q[2] == k[2])) {
            throw new ShapeException("q " + show(q) + ", k " + show(k) + ", v " + show(v)
                    + " do not fit [N,H,L,E], [N,H,S,E], [N,H,S,Ev]");
        }
        double weights = (double) q[0] * q[1] * k[1];
        checkElements(weights, "the attention weights");
        return new Inference(new int[] {q[0], q[1], v[2]}, weights * (q[2] + v[2]));
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        final int heads = inputs.get(0)[0];
        final int length = inputs.get(0)[1];
        final int width = inputs.get(0)[2];
        final int source = inputs.get(1)[1];
        final int valueWidth = inputs.get(2)[2];
        final float scale = floatAttr(node, "scale");
        final boolean causal = boolAttr(node, "causal");
        return new Kernel() {
            @Override
            public float[] run(int batch, float[][] xs) {
                float[] q = xs[0];
                float[] k = xs[1];
                float[] v = xs[2];
                float[] y = new float[batch * heads * length * valueWidth];
                float[] scores = new float[source];
                double[] acc = new double[valueWidth];
                for (int g = 0; g < batch * heads; g++) {
                    int qBase = g * length * width;
                    int kBase = g * source * width;
                    int vBase = g * source * valueWidth;
                    for (int i = 0; i < length; i++) {
                        int keys = causal ? Math.min(i + 1, source) : source;
                        float max = Float.NEGATIVE_INFINITY;
                        for (int j = 0; j < keys; j++) {
                            double dot = 0;
                            for (int e = 0; e < width; e++) {
                                dot += (double) q[qBase + i * width + e] * k[kBase + j * width + e];
                            }
                            scores[j] = (float) dot * scale;
                            max = Math.max(max, scores[j]);
                        }
                        double sum = 0;
                        for (int j = 0; j < keys; j++) {
                            scores[j] = (float) Math.exp(scores[j] - max);
                            sum += scores[j];
                        }
                        float total = (float) sum;
                        java.util.Arrays.fill(acc, 0);
                        for (int j = 0; j < keys; j++) {
                            double weight = scores[j] / total;
                            for (int e = 0; e < valueWidth; e++) {
                                acc[e] += weight * v[vBase + j * valueWidth + e];
                            }
                        }
                        int yBase = (g * length + i) * valueWidth;
                        for (int e = 0; e < valueWidth; e++) {
                            y[yBase + e] = (float) acc[e];
                        }
                    }
                }
                return y;
            }
        };
    }
}
