package org.hashpack.ops;

import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Tensor;

/**
 * {@code AvgPool2d} (NCHW, {@code ceil_mode=False}): the window sum over the zero-padded input,
 * divided by the window size ({@code count_include_pad}) or by the number of non-padding taps.
 */
final class AvgPool2d extends Pooling {
    AvgPool2d() {
        super("AvgPool2d");
        attr("kernel", AttrKind.PAIR);
        attr("stride", AttrKind.PAIR);
        attr("padding", AttrKind.PAIR);
        attr("count_include_pad", AttrKind.BOOL);
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
                float windowSize = (float) win.kh * win.kw;
                int o = 0;
                for (int nc = 0; nc < batch * win.channels; nc++) {
                    int base = nc * win.inH * win.inW;
                    for (int oy = 0; oy < win.outH; oy++) {
                        for (int ox = 0; ox < win.outW; ox++) {
                            float sum = 0f;
                            int count = 0;
                            for (int ky = 0; ky < win.kh; ky++) {
                                int iy = oy * win.sh - win.ph + ky;
                                if (iy < 0 || iy >= win.inH) {
                                    continue;
                                }
                                for (int kx = 0; kx < win.kw; kx++) {
                                    int ix = ox * win.sw - win.pw + kx;
                                    if (ix >= 0 && ix < win.inW) {
                                        sum += x[base + iy * win.inW + ix];
                                        count++;
                                    }
                                }
                            }
                            // padding <= kernel / 2 (checked): every window has a tap, count >= 1
                            y[o++] = sum / (includePad ? windowSize : (float) count);
                        }
                    }
                }
                return y;
            }
        };
    }
}
