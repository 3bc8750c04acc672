package org.hashpack.ops;

import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/**
 * {@code AdaptiveAvgPool2d} and {@code AdaptiveMaxPool2d} (NCHW) to {@code output = [oh, ow]} (each
 * at least 1, larger than the input allowed): output row i pools input rows
 * {@code [floor(i * H / oh), ceil((i + 1) * H / oh))}, columns alike. The average sums in float32 in
 * row-major order and divides by the window's height, then its width, as torch's CPU kernel.
 */
final class AdaptivePool2d extends Op {
    private final boolean max;

    AdaptivePool2d(boolean max) {
        super(max ? "AdaptiveMaxPool2d" : "AdaptiveAvgPool2d", 1);
        this.max = max;
        attr("output", AttrKind.PAIR);
    }

    @Override
    protected String validate(Node node, Map<String, Param> params) {
        int[] output = intsAttr(node, "output");
        if (output[0] < 1 || output[1] < 1) {
            return "output " + Window.pair(output) + " must be positive";
        }
        return null;
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException {
        int[] x = inputs.get(0);
        requireRank(x, "input", 4);
        int[] output = intsAttr(node, "output");
        int[] out = {x[0], output[0], output[1]};
        checkElements(numel(out), "the pooled output");
        // the numpy runtime's bounds (it gathers rows, then columns): the widest window along an
        // axis is at most ceil(H / oh) + 1
        double kh = Math.ceil((double) x[1] / output[0]) + 1;
        double kw = Math.ceil((double) x[2] / output[1]) + 1;
        checkElements((double) x[0] * output[0] * kh * x[2], "the gathered row windows");
        checkElements((double) x[0] * output[0] * output[1] * kw, "the gathered column windows");
        return new Inference(out, numel(out) * kh * kw);
    }

    /** First input index of window {@code i} of {@code out} over {@code in}: floor(i * in / out). */
    private static int start(int i, int in, int out) {
        return (int) ((long) i * in / out);
    }

    /** One past the last input index of window {@code i}: ceil((i + 1) * in / out). */
    private static int end(int i, int in, int out) {
        return (int) (((long) (i + 1) * in + out - 1) / out);
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        final int[] x = inputs.get(0);
        int[] output = intsAttr(node, "output");
        final int oh = output[0];
        final int ow = output[1];
        final int plane = x[1] * x[2];
        final int width = x[2];
        return new Kernel() {
            @Override
            public float[] run(int batch, float[][] xs) {
                float[] in = xs[0];
                float[] y = new float[batch * x[0] * oh * ow];
                int o = 0;
                for (int nc = 0; nc < batch * x[0]; nc++) {
                    int base = nc * plane;
                    for (int i = 0; i < oh; i++) {
                        int y0 = start(i, x[1], oh);
                        int y1 = end(i, x[1], oh);
                        for (int j = 0; j < ow; j++) {
                            int x0 = start(j, width, ow);
                            int x1 = end(j, width, ow);
                            if (max) {
                                float m = Float.NEGATIVE_INFINITY;
                                for (int iy = y0; iy < y1; iy++) {
                                    for (int ix = x0; ix < x1; ix++) {
                                        float v = in[base + iy * width + ix];
                                        m = v > m || Float.isNaN(v) ? v : m; // NaN propagates, as torch
                                    }
                                }
                                y[o++] = m;
                            } else {
                                float sum = 0f;
                                for (int iy = y0; iy < y1; iy++) {
                                    for (int ix = x0; ix < x1; ix++) {
                                        sum += in[base + iy * width + ix];
                                    }
                                }
                                y[o++] = sum / (y1 - y0) / (x1 - x0);
                            }
                        }
                    }
                }
                return y;
            }
        };
    }
}
