package org.hashpack.ops;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/**
 * {@code BatchNorm} in inference form over dimension 1 of {@code [N, C]} or {@code [N, C, H, W]}:
 * {@code (x - mean) * (weight / sqrt(var + eps)) + bias}, in float32 ({@code eps} read as float32).
 */
final class BatchNorm extends Op {
    private static final String[] SLOTS = {"weight", "bias", "running_mean", "running_var"};

    BatchNorm() {
        super("BatchNorm", 1);
        for (String slot : SLOTS) {
            param(slot, 1);
        }
        attr("eps", AttrKind.FLOAT);
    }

    @Override
    protected String validate(Node node, Map<String, Param> params) {
        int[] first = params.get(SLOTS[0]).shape();
        for (String slot : SLOTS) {
            if (!Arrays.equals(params.get(slot).shape(), first)) {
                StringBuilder s = new StringBuilder("weight, bias, running_mean and running_var differ in shape: ");
                for (int i = 0; i < SLOTS.length; i++) {
                    s.append(i > 0 ? ", " : "").append(SLOTS[i]).append(' ')
                            .append(Arrays.toString(params.get(SLOTS[i]).shape()));
                }
                return s.toString();
            }
        }
        if (((Number) node.attrs().get("eps")).doubleValue() < 0) {
            return "eps " + node.attrs().get("eps") + " is negative";
        }
        return null;
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException {
        int[] x = inputs.get(0);
        requireRank(x, "input", 2, 4);
        int channels = params.get("weight").shape()[0];
        if (x[0] != channels) {
            throw new ShapeException("input " + show(x) + " does not fit " + channels + " channels");
        }
        return new Inference(x.clone(), numel(x));
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        int[] x = inputs.get(0);
        final int channels = x[0];
        final int inner = x.length == 3 ? x[1] * x[2] : 1;
        float eps = floatAttr(node, "eps");
        float[] weight = params.get("weight").data();
        final float[] bias = params.get("bias").data();
        final float[] mean = params.get("running_mean").data();
        float[] var = params.get("running_var").data();
        final float[] scale = new float[channels];
        for (int c = 0; c < channels; c++) {
            // float32 steps as numpy and torch compute them; sqrt of a float is correctly rounded
            scale[c] = weight[c] / (float) Math.sqrt(var[c] + eps);
        }
        return new Kernel() {
            @Override
            public float[] run(int batch, float[][] xs) {
                float[] in = xs[0];
                float[] y = new float[in.length];
                int i = 0;
                for (int n = 0; n < batch; n++) {
                    for (int c = 0; c < channels; c++) {
                        float m = mean[c];
                        float s = scale[c];
                        float b = bias[c];
                        for (int k = 0; k < inner; k++, i++) {
                            y[i] = (in[i] - m) * s + b;
                        }
                    }
                }
                return y;
            }
        };
    }
}
