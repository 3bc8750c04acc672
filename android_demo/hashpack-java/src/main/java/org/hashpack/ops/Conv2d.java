package org.hashpack.ops;

import java.math.BigInteger;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/**
 * {@code Conv2d} (NCHW) with stride, zero padding, dilation and groups (depthwise included): weight
 * {@code [out, C/groups, kh, kw]}, bias {@code [out]}.
 */
final class Conv2d extends Op {
    Conv2d() {
        super("Conv2d", 1);
        param("weight", 4);
        optionalParam("bias", 1);
        attr("stride", AttrKind.PAIR);
        attr("padding", AttrKind.PAIR);
        attr("dilation", AttrKind.PAIR);
        attr("groups", AttrKind.INT);
    }

    @Override
    protected String validate(Node node, Map<String, Param> params) {
        int out = params.get("weight").shape()[0];
        BigInteger groups = (BigInteger) node.attrs().get("groups");
        if (groups.signum() < 1 || out % groups.intValue() != 0) {
            return "groups=" + groups + " does not divide " + out + " output channels";
        }
        Param bias = params.get("bias");
        if (bias != null && bias.shape()[0] != out) {
            return "bias shape " + Arrays.toString(bias.shape()) + " does not fit " + out + " output channels";
        }
        int[] stride = intsAttr(node, "stride");
        int[] dilation = intsAttr(node, "dilation");
        if (Math.min(Math.min(stride[0], stride[1]), Math.min(dilation[0], dilation[1])) < 1) {
            return "stride " + Window.pair(stride) + " and dilation " + Window.pair(dilation) + " must be positive";
        }
        return null;
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException {
        int[] x = inputs.get(0);
        int[] w = params.get("weight").shape();
        long groups = intAttr(node, "groups");
        if (x.length == 3 && x[0] != w[1] * groups) {
            throw new ShapeException("input " + show(x) + " has " + x[0] + " channels, weight expects " + w[1] * groups);
        }
        Window win = Window.of(x, new int[] {w[2], w[3]}, intsAttr(node, "stride"), intsAttr(node, "padding"),
                intsAttr(node, "dilation"));
        double positions = (double) win.outH * win.outW;
        checkElements((double) x[0] * w[2] * w[3] * positions, "the unfolded input");
        return new Inference(new int[] {w[0], win.outH, win.outW}, (double) w[0] * w[1] * w[2] * w[3] * positions);
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        Tensor weight = params.get("weight");
        Tensor bias = params.get("bias");
        final int outChannels = weight.dim(0);
        final int groupIn = weight.dim(1);
        final Window win = Window.checked(inputs.get(0), new int[] {weight.dim(2), weight.dim(3)},
                intsAttr(node, "stride"), intsAttr(node, "padding"), intsAttr(node, "dilation"));
        final int outPerGroup = outChannels / intAttr(node, "groups");
        final float[] w = weight.data();
        final float[] b = bias == null ? null : bias.data();
        return new Kernel() {
            @Override
            public float[] run(int batch, float[][] xs) {
                float[] x = xs[0];
                int plane = win.outH * win.outW;
                int inPlane = win.inH * win.inW;
                float[] y = new float[batch * outChannels * plane];
                double[] acc = new double[plane];
                for (int n = 0; n < batch; n++) {
                    for (int oc = 0; oc < outChannels; oc++) {
                        Arrays.fill(acc, 0);
                        int g = oc / outPerGroup;
                        for (int ic = 0; ic < groupIn; ic++) {
                            int inBase = (n * win.channels + g * groupIn + ic) * inPlane;
                            int wBase = (oc * groupIn + ic) * win.kh * win.kw;
                            for (int ky = 0; ky < win.kh; ky++) {
                                for (int kx = 0; kx < win.kw; kx++) {
                                    accumulate(x, inBase, w[wBase + ky * win.kw + kx], ky, kx, acc);
                                }
                            }
                        }
                        int outBase = (n * outChannels + oc) * plane;
                        for (int i = 0; i < plane; i++) {
                            float v = (float) acc[i];
                            y[outBase + i] = b == null ? v : v + b[oc];
                        }
                    }
                }
                return y;
            }

            /** acc[oy, ox] += w * x[iy, ix] for every output position whose tap (ky, kx) is inside the input. */
            private void accumulate(float[] x, int inBase, float weightValue, int ky, int kx, double[] acc) {
                int x0 = win.firstOx(kx);
                int x1 = win.endOx(kx);
                if (x0 >= x1) {
                    return;
                }
                double wv = weightValue;
                for (int oy = 0; oy < win.outH; oy++) {
                    int iy = oy * win.sh - win.ph + ky * win.dh;
                    if (iy < 0 || iy >= win.inH) {
                        continue;
                    }
                    int row = inBase + iy * win.inW;
                    int ix = x0 * win.sw - win.pw + kx * win.dw;
                    int o = oy * win.outW;
                    for (int ox = x0; ox < x1; ox++, ix += win.sw) {
                        acc[o + ox] += wv * x[row + ix];
                    }
                }
            }
        };
    }
}
