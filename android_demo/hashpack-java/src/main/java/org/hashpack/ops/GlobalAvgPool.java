package org.hashpack.ops;

import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/** {@code GlobalAvgPool}: the mean over H and W, {@code [N, C, H, W] -> [N, C, 1, 1]}. */
final class GlobalAvgPool extends Op {
    GlobalAvgPool() {
        super("GlobalAvgPool", 1);
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException {
        int[] x = inputs.get(0);
        requireRank(x, "input", 4);
        return new Inference(new int[] {x[0], 1, 1}, numel(x));
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        final int[] x = inputs.get(0);
        return new Kernel() {
            @Override
            public float[] run(int batch, float[][] xs) {
                float[] in = xs[0];
                int plane = x[1] * x[2];
                float[] y = new float[batch * x[0]];
                for (int nc = 0; nc < y.length; nc++) {
                    double sum = 0;
                    for (int i = nc * plane, end = i + plane; i < end; i++) {
                        sum += in[i];
                    }
                    y[nc] = (float) (sum / plane);
                }
                return y;
            }
        };
    }
}
