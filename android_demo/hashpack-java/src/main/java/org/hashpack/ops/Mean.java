package org.hashpack.ops;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/**
 * {@code Mean}: {@code x.mean(dims, keepdim)} over distinct non-batch axes {@code dims} (at least
 * one; batch included in the numbering, so each is at least 1). Sums in double, as numpy's pairwise
 * float32 sums and torch's are both within float32 rounding of the exact mean.
 */
final class Mean extends Op {
    Mean() {
        super("Mean", 1);
        attr("dims", AttrKind.INTS);
        attr("keepdim", AttrKind.BOOL);
    }

    @Override
    protected String validate(Node node, Map<String, Param> params) {
        int[] dims = intsAttr(node, "dims");
        boolean ok = dims.length >= 1;
        for (int i = 0; ok && i < dims.length; i++) {
            ok = dims[i] >= 1;
            for (int j = 0; ok && j < i; j++) {
                ok = dims[j] != dims[i];
            }
        }
        if (!ok) {
            return "dims " + Arrays.toString(dims) + " are not distinct non-batch axes (at least one, each >= 1)";
        }
        return null;
    }

    /** Per sample-axis: reduced or not (the node passed infer, so every dim is in range). */
    private static boolean[] reduced(Node node, int sampleRank) {
        boolean[] reduced = new boolean[sampleRank];
        for (int d : intsAttr(node, "dims")) {
            reduced[d - 1] = true;
        }
        return reduced;
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException {
        int[] x = inputs.get(0);
        int rank = x.length + 1;
        for (int d : intsAttr(node, "dims")) {
            if (d >= rank) {
                throw new ShapeException("dim " + d + " is out of range [1, " + rank + ") for input " + show(x));
            }
        }
        return new Inference(outShape(x, reduced(node, x.length), boolAttr(node, "keepdim")), numel(x));
    }

    private static int[] outShape(int[] x, boolean[] reduced, boolean keepdim) {
        int kept = 0;
        for (int d = 0; d < x.length; d++) {
            kept += reduced[d] && !keepdim ? 0 : 1;
        }
        int[] out = new int[kept];
        int k = 0;
        for (int d = 0; d < x.length; d++) {
            if (!reduced[d]) {
                out[k++] = x[d];
            } else if (keepdim) {
                out[k++] = 1;
            }
        }
        return out;
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        final int[] x = inputs.get(0);
        final int rank = x.length;
        boolean[] reduced = reduced(node, rank);
        // output strides laid over the input's axes: 0 along the reduced ones
        int[] keptShape = x.clone();
        int count = 1;
        for (int d = 0; d < rank; d++) {
            if (reduced[d]) {
                keptShape[d] = 1;
                count *= x[d];
            }
        }
        final int[] outStride = Strides.of(keptShape);
        for (int d = 0; d < rank; d++) {
            if (reduced[d]) {
                outStride[d] = 0;
            }
        }
        final int sample = (int) numel(x);
        final int outSample = sample / count;
        final double divisor = count;
        final int[][] strides = {outStride};
        return new Kernel() {
            @Override
            public float[] run(int batch, float[][] xs) {
                float[] in = xs[0];
                double[] sums = new double[outSample];
                float[] y = new float[batch * outSample];
                int[] index = new int[rank];
                int[] at = new int[1];
                for (int n = 0; n < batch; n++) {
                    Arrays.fill(sums, 0);
                    Arrays.fill(index, 0);
                    at[0] = 0;
                    int base = n * sample;
                    for (int i = 0; i < sample; i++) {
                        sums[at[0]] += in[base + i];
                        Strides.step(index, x, rank, strides, at);
                    }
                    for (int o = 0; o < outSample; o++) {
                        y[n * outSample + o] = (float) (sums[o] / divisor);
                    }
                }
                return y;
            }
        };
    }
}
