package org.hashpack.ops;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/**
 * {@code MatMul}: {@code a @ b} for a {@code [N, …, M, K]}, b {@code [N, …, K, P]} of equal rank ≥ 3
 * and equal dims between the batch and the last two (no broadcasting); output {@code [N, …, M, P]}.
 */
final class MatMul extends Op {
    MatMul() {
        super("MatMul", 2);
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException {
        int[] a = inputs.get(0);
        int[] b = inputs.get(1);
        int r = a.length;
        if (r != b.length || r < 2) {
            throw new ShapeException("inputs " + show(a) + " and " + show(b) + " must have equal rank >= 3");
        }
        if (!Arrays.equals(Arrays.copyOf(a, r - 2), Arrays.copyOf(b, r - 2)) || a[r - 1] != b[r - 2]) {
            throw new ShapeException("inputs " + show(a) + " and " + show(b)
                    + " do not multiply ([…, M, K] @ […, K, P])");
        }
        int[] out = a.clone();
        out[r - 1] = b[r - 1];
        return new Inference(out, numel(out) * a[r - 1]);
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        int[] a = inputs.get(0);
        int[] b = inputs.get(1);
        int r = a.length;
        final int m = a[r - 2];
        final int k = a[r - 1];
        final int p = b[r - 1];
        return new Kernel() {
            @Override
            public float[] run(int batch, float[][] xs) {
                float[] x = xs[0];
                float[] w = xs[1];
                int count = x.length / (m * k); // the batch times the dims before the last two
                float[] y = new float[count * m * p];
                double[] acc = new double[p];
                for (int g = 0; g < count; g++) {
                    int xBase = g * m * k;
                    int wBase = g * k * p;
                    for (int i = 0; i < m; i++) {
                        Arrays.fill(acc, 0);
                        for (int t = 0; t < k; t++) {
                            double xv = x[xBase + i * k + t];
                            int row = wBase + t * p;
                            for (int j = 0; j < p; j++) {
                                acc[j] += xv * w[row + j];
                            }
                        }
                        int yBase = (g * m + i) * p;
                        for (int j = 0; j < p; j++) {
                            y[yBase + j] = (float) acc[j];
                        }
                    }
                }
                return y;
            }
        };
    }
}
