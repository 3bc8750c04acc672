package org.hashpack.ops;

import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/**
 * {@code Slice}: {@code x.narrow(axis, start, end - start)} with {@code axis >= 1} (never the batch)
 * and {@code 0 <= start < end <= x.shape[axis]}; {@code chunk}/{@code split} pieces.
 */
final class Slice extends Op {
    Slice() {
        super("Slice", 1);
        attr("axis", AttrKind.INT);
        attr("start", AttrKind.INT);
        attr("end", AttrKind.INT);
    }

    @Override
    protected String validate(Node node, Map<String, Param> params) {
        int axis = intAttr(node, "axis");
        int start = intAttr(node, "start");
        int end = intAttr(node, "end");
        if (axis < 1) {
            return "axis " + axis + " is not a non-batch axis (at least 1)";
        }
        if (start < 0 || start >= end) {
            return "start " + start + " and end " + end + " do not satisfy 0 <= start < end";
        }
        return null;
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException {
        int[] x = inputs.get(0);
        int rank = x.length + 1;
        int axis = intAttr(node, "axis");
        int end = intAttr(node, "end");
        if (axis >= rank) {
            throw new ShapeException("axis " + axis + " is out of range [1, " + rank + ") for input " + show(x));
        }
        if (end > x[axis - 1]) {
            throw new ShapeException("end " + end + " is past dimension " + axis + " of input " + show(x));
        }
        int[] out = x.clone();
        out[axis - 1] = end - intAttr(node, "start");
        return new Inference(out, numel(out));
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        final int[] x = inputs.get(0);
        final int axis = intAttr(node, "axis") - 1; // in the per-sample shape
        int start = intAttr(node, "start");
        int end = intAttr(node, "end");
        int inner = 1;
        for (int d = axis + 1; d < x.length; d++) {
            inner *= x[d];
        }
        int outer = 1;
        for (int d = 0; d < axis; d++) {
            outer *= x[d];
        }
        final int rows = outer;
        final int inBlock = x[axis] * inner; // elements per outer index, input and output
        final int outBlock = (end - start) * inner;
        final int offset = start * inner;
        return new Kernel() {
            @Override
            public float[] run(int batch, float[][] xs) {
                float[] in = xs[0];
                float[] y = new float[batch * rows * outBlock];
                for (int o = 0; o < batch * rows; o++) {
                    System.arraycopy(in, o * inBlock + offset, y, o * outBlock, outBlock);
                }
                return y;
            }
        };
    }
}
