package org.hashpack.ops;

import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Tensor;

/** {@code MaxPool2d} (NCHW, {@code ceil_mode=False}); padding counts as -infinity. */
final class MaxPool2d extends Pooling {
    MaxPool2d() {
        super("MaxPool2d");
        attr("kernel", AttrKind.PAIR);
        attr("stride", AttrKind.PAIR);
        attr("padding", AttrKind.PAIR);
        attr("dilation", AttrKind.PAIR);
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
                            for (int ky = 0; ky < win.kh; ky++) {
                                int iy = oy * win.sh - win.ph + ky * win.dh;
                                if (iy < 0 || iy >= win.inH) {
                                    continue;
                                }
                                for (int kx = 0; kx < win.kw; kx++) {
                                    int ix = ox * win.sw - win.pw + kx * win.dw;
                                    if (ix >= 0 && ix < win.inW) {
                                        m = Math.max(m, x[base + iy * win.inW + ix]); // NaN propagates
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
