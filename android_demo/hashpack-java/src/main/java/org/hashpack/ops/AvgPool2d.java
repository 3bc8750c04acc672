package org.hashpack.ops;

import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Tensor;

/**
 * {@code AvgPool2d} (NCHW, optional {@code ceil_mode}): the window sum over the zero-padded input,
 * divided as torch does: by the window's size clipped to the padded input ({@code count_include_pad};
 * the full kernel unless a ceil-mode window reaches past it) or by the number of input taps.
 */
final class AvgPool2d extends Pooling {
    AvgPool2d() {
        super("AvgPool2d");
        attr("kernel", AttrKind.PAIR);
        attr("stride", AttrKind.PAIR);
        attr("padding", AttrKind.PAIR);
        attr("count_include_pad", AttrKind.BOOL);
        ceilModeAttr();
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        final Window win = checkedWindow(node, inputs.get(0));
        final boolean includePad = boolAttr(node, "count_include_pad");
        return new Kernel() {
            @Override
            public float[] run(int batch, float[][] xs) {
                float[] x = xs[0];
                float[] y = new float[batch * win.channels * win.outH * win.outW];
                int o = 0;
                for (int nc = 0; nc < batch * win.channels; nc++) {
                    int base = nc * win.inH * win.inW;
                    for (int oy = 0; oy < win.outH; oy++) {
                        long top = (long) oy * win.sh - win.ph;
                        long rows = Math.min(top + win.kh, (long) win.inH + win.ph) - top;
                        for (int ox = 0; ox < win.outW; ox++) {
                            long left = (long) ox * win.sw - win.pw;
                            long cols = Math.min(left + win.kw, (long) win.inW + win.pw) - left;
                            float sum = 0f;
                            // taps outside the input are skipped (a ceil-mode window may reach past the padded input)
                            int y0 = (int) Math.max(top, 0);
                            int y1 = (int) Math.min(top + win.kh, win.inH);
                            int x0 = (int) Math.max(left, 0);
                            int x1 = (int) Math.min(left + win.kw, win.inW);
                            for (int iy = y0; iy < y1; iy++) {
                                for (int ix = x0; ix < x1; ix++) {
                                    sum += x[base + iy * win.inW + ix];
                                }
                            }
                            int count = Math.max(y1 - y0, 0) * Math.max(x1 - x0, 0);
                            // padding <= kernel / 2 (checked) and a ceil-mode window starts before the
                            // right padding: every window has a tap, count >= 1
                            y[o++] = sum / (float) (includePad ? rows * cols : count);
                        }
                    }
                }
                return y;
            }
        };
    }
}
