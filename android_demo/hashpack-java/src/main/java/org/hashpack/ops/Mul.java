package org.hashpack.ops;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/**
 * {@code Mul}: {@code a * b} with two-way broadcasting: same rank, each dimension pair equal or one
 * of them 1 (squeeze-and-excitation gating {@code [N, C, 1, 1] * [N, C, H, W]}); the output has the
 * broadcast shape.
 */
final class Mul extends Op {
    Mul() {
        super("Mul", 2);
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException {
        int[] out = broadcast(inputs.get(0), inputs.get(1));
        checkElements(numel(out), "the output");
        return new Inference(out, numel(out));
    }

    private static int[] broadcast(int[] a, int[] b) throws ShapeException {
        boolean ok = a.length == b.length;
        int[] out = a.clone();
        for (int i = 0; ok && i < a.length; i++) {
            ok = a[i] == b[i] || a[i] == 1 || b[i] == 1;
            out[i] = Math.max(a[i], b[i]);
        }
        if (!ok) {
            throw new ShapeException("inputs " + show(a) + " and " + show(b) + " do not broadcast together");
        }
        return out;
    }

    /** Strides of {@code shape} inside {@code out}, 0 along its broadcast (size-1) dimensions. */
    private static int[] broadcastStrides(int[] shape, int[] out) {
        int[] strides = Strides.of(shape);
        for (int d = 0; d < shape.length; d++) {
            if (shape[d] != out[d]) {
                strides[d] = 0;
            }
        }
        return strides;
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        final int[] a = inputs.get(0);
        final int[] b = inputs.get(1);
        if (Arrays.equals(a, b)) {
            return new Kernel() {
                @Override
                public float[] run(int batch, float[][] xs) {
                    float[] x = xs[0];
                    float[] z = xs[1];
                    float[] y = new float[x.length];
                    for (int i = 0; i < x.length; i++) {
                        y[i] = x[i] * z[i];
                    }
                    return y;
                }
            };
        }
        final int[] out;
        try {
            out = broadcast(a, b);
        } catch (ShapeException e) {
            throw new IllegalStateException("kernel() on a node that did not pass infer(): " + e.getMessage(), e);
        }
        final int rank = out.length;
        final int[] aStride = broadcastStrides(a, out);
        final int[] bStride = broadcastStrides(b, out);
        final int aSample = (int) numel(a);
        final int bSample = (int) numel(b);
        final int outSample = (int) numel(out);
        // the innermost dimension is walked in a plain loop, the others by the multi-index
        final int inner = rank == 0 ? 1 : out[rank - 1];
        final int aInner = rank == 0 ? 0 : aStride[rank - 1];
        final int bInner = rank == 0 ? 0 : bStride[rank - 1];
        final int rows = outSample / inner;
        final int outer = Math.max(rank - 1, 0);
        final int[][] strides = {aStride, bStride};
        return new Kernel() {
            @Override
            public float[] run(int batch, float[][] xs) {
                float[] x = xs[0];
                float[] z = xs[1];
                float[] y = new float[batch * outSample];
                int[] index = new int[rank];
                int[] at = new int[2];
                int i = 0;
                for (int n = 0; n < batch; n++) {
                    at[0] = n * aSample;
                    at[1] = n * bSample;
                    Arrays.fill(index, 0);
                    for (int r = 0; r < rows; r++) {
                        int ai = at[0];
                        int bi = at[1];
                        for (int k = 0; k < inner; k++) {
                            y[i++] = x[ai + k * aInner] * z[bi + k * bInner];
                        }
                        Strides.step(index, out, outer, strides, at);
                    }
                }
                return y;
            }
        };
    }
}
