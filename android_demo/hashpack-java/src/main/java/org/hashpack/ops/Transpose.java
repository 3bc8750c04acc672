package org.hashpack.ops;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/**
 * {@code Transpose}: {@code x.permute(perm)}, {@code perm} a permutation of {@code 0..rank-1} (batch
 * included) that keeps the batch first ({@code perm[0] = 0}); channel shuffle's transpose.
 */
final class Transpose extends Op {
    Transpose() {
        super("Transpose", 1);
        attr("perm", AttrKind.INTS);
    }

    @Override
    protected String validate(Node node, Map<String, Param> params) {
        int[] perm = intsAttr(node, "perm");
        boolean[] seen = new boolean[perm.length];
        boolean ok = perm.length >= 1 && perm[0] == 0;
        for (int i = 0; ok && i < perm.length; i++) {
            ok = perm[i] >= 0 && perm[i] < perm.length && !seen[perm[i]];
            if (ok) {
                seen[perm[i]] = true;
            }
        }
        if (!ok) {
            return "perm " + Arrays.toString(perm) + " is not a permutation of 0.." + (perm.length - 1)
                    + " that keeps the batch axis 0 first";
        }
        return null;
    }

    /** The permutation of the per-sample axes: output axis d reads input axis {@code axes[d]}. */
    private static int[] sampleAxes(Node node) {
        int[] perm = intsAttr(node, "perm");
        int[] axes = new int[perm.length - 1];
        for (int d = 0; d < axes.length; d++) {
            axes[d] = perm[d + 1] - 1;
        }
        return axes;
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException {
        int[] x = inputs.get(0);
        int[] axes = sampleAxes(node);
        if (axes.length != x.length) {
            throw new ShapeException("perm " + Arrays.toString(intsAttr(node, "perm")) + " has " + (axes.length + 1)
                    + " axes, input " + show(x) + " has rank " + (x.length + 1));
        }
        int[] out = new int[x.length];
        for (int d = 0; d < out.length; d++) {
            out[d] = x[axes[d]];
        }
        return new Inference(out, numel(x));
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        final int[] x = inputs.get(0);
        int[] axes = sampleAxes(node);
        final int rank = x.length;
        final int[] out = new int[rank];
        int[] inStrides = Strides.of(x);
        final int[] stride = new int[rank]; // input stride along each output axis
        boolean identity = true;
        for (int d = 0; d < rank; d++) {
            out[d] = x[axes[d]];
            stride[d] = inStrides[axes[d]];
            identity &= axes[d] == d;
        }
        if (identity) {
            return Reshape.VIEW;
        }
        final int sample = (int) numel(x);
        final int inner = out[rank - 1];
        final int innerStride = stride[rank - 1];
        final int rows = sample / inner;
        final int[][] strides = {stride};
        return new Kernel() {
            @Override
            public float[] run(int batch, float[][] xs) {
                float[] in = xs[0];
                float[] y = new float[in.length];
                int[] index = new int[rank];
                int[] at = new int[1];
                int i = 0;
                for (int n = 0; n < batch; n++) {
                    at[0] = n * sample;
                    Arrays.fill(index, 0);
                    for (int r = 0; r < rows; r++) {
                        int base = at[0];
                        for (int k = 0; k < inner; k++) {
                            y[i++] = in[base + k * innerStride];
                        }
                        Strides.step(index, out, rank - 1, strides, at);
                    }
                }
                return y;
            }
        };
    }
}
