package org.hashpack.ops;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/**
 * {@code Linear}: {@code y = x W^T + b} over the last axis (as {@code nn.Linear}), x {@code [N, …, in]}
 * (rank 2, or more for a transformer's {@code [N, L, D]}), weight {@code [out, in]}, bias {@code [out]}.
 */
final class Linear extends Op {
    Linear() {
        super("Linear", 1);
        param("weight", 2);
        optionalParam("bias", 1);
    }

    @Override
    protected String validate(Node node, Map<String, Param> params) {
        Param bias = params.get("bias");
        int out = params.get("weight").shape()[0];
        if (bias != null && bias.shape()[0] != out) {
            return "bias shape " + Arrays.toString(bias.shape()) + " does not fit " + out + " output features";
        }
        return null;
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException {
        int[] x = inputs.get(0);
        int[] w = params.get("weight").shape();
        requireRank(x, "input", 2, 3, 4, 5, 6, 7, 8);
        if (x[x.length - 1] != w[1]) {
            throw new ShapeException("input " + show(x) + " does not fit weight " + Arrays.toString(w));
        }
        int[] out = x.clone();
        out[out.length - 1] = w[0];
        double rows = numel(x) / x[x.length - 1];
        return new Inference(out, rows * w[0] * w[1]);
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        Tensor weight = params.get("weight");
        Tensor bias = params.get("bias");
        final int out = weight.dim(0);
        final int in = weight.dim(1);
        final float[] w = weight.data();
        final float[] b = bias == null ? null : bias.data();
        return new Kernel() {
            @Override
            public float[] run(int batch, float[][] xs) {
                float[] x = xs[0];
                int rows = x.length / in; // the batch times the dims before the last
                float[] y = new float[rows * out];
                // four rows at a time share each weight load; every output is still one sequential
                // double sum over i (the same bits as one row at a time)
                int n = 0;
                for (; n + 4 <= rows; n += 4) {
                    int x0 = n * in;
                    int x1 = x0 + in;
                    int x2 = x1 + in;
                    int x3 = x2 + in;
                    for (int o = 0; o < out; o++) {
                        int wBase = o * in;
                        double a0 = 0;
                        double a1 = 0;
                        double a2 = 0;
                        double a3 = 0;
                        for (int i = 0; i < in; i++) {
                            double wv = w[wBase + i];
                            a0 += x[x0 + i] * wv;
                            a1 += x[x1 + i] * wv;
                            a2 += x[x2 + i] * wv;
                            a3 += x[x3 + i] * wv;
                        }
                        float bias = b == null ? 0f : b[o];
                        y[n * out + o] = b == null ? (float) a0 : (float) a0 + bias;
                        y[(n + 1) * out + o] = b == null ? (float) a1 : (float) a1 + bias;
                        y[(n + 2) * out + o] = b == null ? (float) a2 : (float) a2 + bias;
                        y[(n + 3) * out + o] = b == null ? (float) a3 : (float) a3 + bias;
                    }
                }
                for (; n < rows; n++) {
                    int xBase = n * in;
                    for (int o = 0; o < out; o++) {
                        int wBase = o * in;
                        double acc = 0; // exact products, one rounding at the end
                        for (int i = 0; i < in; i++) {
                            acc += (double) x[xBase + i] * w[wBase + i];
                        }
                        float v = (float) acc;
                        y[n * out + o] = b == null ? v : v + b[o];
                    }
                }
                return y;
            }
        };
    }
}
