package org.hashpack.ops;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/**
 * {@code LayerNorm}: {@code F.layer_norm(x, x.shape[-dims:], weight, bias, eps)}: over the last
 * {@code dims} axes, {@code (x - mean) / sqrt(var + eps)} with the biased variance, then (optionally)
 * {@code · weight + bias}. Statistics in float64, as the numpy runtime (torch's own kernel is more
 * precise than a naive float32 sum).
 */
final class LayerNorm extends Op {
    LayerNorm() {
        super("LayerNorm", 1);
        optionalParam("weight", ANY_RANK);
        optionalParam("bias", ANY_RANK);
        attr("dims", AttrKind.INT);
        attr("eps", AttrKind.FLOAT);
    }

    @Override
    protected String validate(Node node, Map<String, Param> params) {
        int dims = intAttr(node, "dims");
        if (dims < 1) {
            return "dims " + dims + " must be >= 1";
        }
        if (floatAttr(node, "eps") < 0) {
            return "eps " + node.attrs().get("eps") + " is negative";
        }
        Param weight = params.get("weight");
        Param bias = params.get("bias");
        if ((weight == null) != (bias == null)) {
            return "takes both weight and bias or neither";
        }
        if (weight != null && (!Arrays.equals(weight.shape(), bias.shape()) || weight.rank() != dims)) {
            return "weight " + Arrays.toString(weight.shape()) + " and bias " + Arrays.toString(bias.shape())
                    + " must both have the " + dims + " normalized dims";
        }
        return null;
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException {
        int[] x = inputs.get(0);
        int dims = intAttr(node, "dims");
        if (dims > x.length) {
            throw new ShapeException("dims " + dims + " must be in [1, " + (x.length + 1) + ") for input " + show(x));
        }
        Param weight = params.get("weight");
        if (weight != null && !Arrays.equals(Arrays.copyOfRange(x, x.length - dims, x.length), weight.shape())) {
            throw new ShapeException("input " + show(x) + " does not end with the weight's "
                    + Arrays.toString(weight.shape()));
        }
        return new Inference(x.clone(), numel(x));
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        int[] x = inputs.get(0);
        int dims = intAttr(node, "dims");
        final int group = (int) numel(Arrays.copyOfRange(x, x.length - dims, x.length));
        final double eps = floatAttr(node, "eps"); // float32, widened exactly
        final float[] w = params.get("weight") == null ? null : params.get("weight").data();
        final float[] b = params.get("bias") == null ? null : params.get("bias").data();
        return new Kernel() {
            @Override
            public float[] run(int batch, float[][] xs) {
                float[] in = xs[0];
                float[] y = new float[in.length];
                for (int base = 0; base < in.length; base += group) {
                    double sum = 0;
                    for (int i = 0; i < group; i++) {
                        sum += in[base + i];
                    }
                    double mean = sum / group;
                    double squares = 0;
                    for (int i = 0; i < group; i++) {
                        double c = in[base + i] - mean;
                        squares += c * c;
                    }
                    double deviation = Math.sqrt(squares / group + eps);
                    for (int i = 0; i < group; i++) {
                        float v = (float) ((in[base + i] - mean) / deviation);
                        y[base + i] = w == null ? v : v * w[i] + b[i];
                    }
                }
                return y;
            }
        };
    }
}
