package org.hashpack.ops;

import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/**
 * {@code Softmax} along {@code axis} of the full shape (batch included in the numbering, negative counts
 * from the end, as in torch; the batch axis itself is rejected): {@code exp(x - max) / sum(exp(x - max))},
 * in float32.
 */
final class Softmax extends Op {
    Softmax() {
        super("Softmax", 1);
        attr("axis", AttrKind.INT);
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException {
        int[] x = inputs.get(0);
        int rank = x.length + 1;
        int axis = intAttr(node, "axis");
        if (axis < -rank || axis >= rank) {
            throw new ShapeException("axis " + axis + " is out of range for rank " + rank);
        }
        if (axis == 0 || axis == -rank) { // FORMAT.md §5: no op mixes the samples of a batch
            throw new ShapeException("axis " + axis + " is the batch dimension (rank " + rank + ")");
        }
        return new Inference(x.clone(), numel(x));
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        final int[] x = inputs.get(0);
        int rank = x.length + 1;
        int axis = intAttr(node, "axis");
        final int dim = axis < 0 ? axis + rank : axis;
        int innerSize = 1;
        for (int d = dim; d < x.length; d++) {
            innerSize *= x[d];
        }
        final int inner = innerSize;
        return new Kernel() {
            @Override
            public float[] run(int batch, float[][] xs) {
                float[] in = xs[0];
                // the full tensor as [outer, extent, inner], with the softmax axis in the middle
                int extent = dim == 0 ? batch : x[dim - 1];
                int outer = in.length / (extent * inner);
                float[] y = new float[in.length];
                for (int o = 0; o < outer; o++) {
                    for (int j = 0; j < inner; j++) {
                        int base = o * extent * inner + j;
                        float max = Float.NEGATIVE_INFINITY;
                        for (int k = 0; k < extent; k++) {
                            max = Math.max(max, in[base + k * inner]);
                        }
                        double sum = 0;
                        for (int k = 0; k < extent; k++) {
                            float e = (float) Math.exp(in[base + k * inner] - max);
                            y[base + k * inner] = e;
                            sum += e;
                        }
                        float total = (float) sum;
                        for (int k = 0; k < extent; k++) {
                            y[base + k * inner] /= total;
                        }
                    }
                }
                return y;
            }
        };
    }
}
