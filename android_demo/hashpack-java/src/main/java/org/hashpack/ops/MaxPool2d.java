package org.hashpack.ops;

import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Tensor;

/**
 * {@code MaxPool2d} (NCHW, optional {@code ceil_mode}); padding, and the part of a ceil-mode window
 * past the padded input, count as -infinity.
 */
final class MaxPool2d extends Pooling {
    MaxPool2d() {
        super("MaxPool2d");
        attr("kernel", AttrKind.PAIR);
        attr("stride", AttrKind.PAIR);
        attr("padding", AttrKind.PAIR);
        attr("dilation", AttrKind.PAIR);
        ceilModeAttr();
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        final Window win = checkedWindow(node, inputs.get(0));
        return new Kernel() {
            @Override
            public float[] run(int batch, float[][] xs) {
                float[] x = xs[0];
                float[] y = new float[batch * win.channels * win.outH * win.outW];
                int o = 0;
                for (int nc = 0; nc < batch * win.channels; nc++) {
                    int base = nc * win.inH * win.inW;
                    for (int oy = 0; oy < win.outH; oy++) {
                        for (int ox = 0; ox < win.outW; ox++) {
                            float m = Float.NEGATIVE_INFINITY;
                            // a ceil-mode window may reach past the padded input: taps stop at the input's edge
                            long top = (long) oy * win.sh - win.ph;
                            long left = (long) ox * win.sw - win.pw;
                            for (int ky = 0; ky < win.kh; ky++) {
                                long iy = top + (long) ky * win.dh;
                                if (iy >= win.inH) {
                                    break;
                                }
                                if (iy < 0) {
                                    continue;
                                }
                                int row = base + (int) iy * win.inW;
                                for (int kx = 0; kx < win.kw; kx++) {
                                    long ix = left + (long) kx * win.dw;
                                    if (ix >= win.inW) {
                                        break;
                                    }
                                    if (ix >= 0) {
                                        m = Math.max(m, x[row + (int) ix]); // NaN propagates
                                    }
                                }
                            }
                            y[o++] = m;
                        }
                    }
                }
                return y;
            }
        };
    }
}
