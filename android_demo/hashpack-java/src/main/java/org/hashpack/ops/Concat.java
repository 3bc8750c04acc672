package org.hashpack.ops;

import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/** {@code Concat}: joins its inputs along {@code axis} (at least 1: never the batch dimension). */
final class Concat extends Op {
    Concat() {
        super("Concat", -1);
        attr("axis", AttrKind.INT);
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException {
        int[] first = inputs.get(0);
        int rank = first.length + 1;
        int axis = intAttr(node, "axis");
        if (axis < 1 || axis >= rank) {
            throw new ShapeException("axis " + axis + " is out of range [1, " + rank + ") for input " + show(first));
        }
        long total = 0;
        for (int[] s : inputs) {
            boolean ok = s.length == first.length;
            for (int d = 0; ok && d < s.length; d++) {
                ok = d == axis - 1 || s[d] == first[d];
            }
            if (!ok) {
                throw new ShapeException("input " + show(s) + " does not match " + show(first) + " outside axis " + axis);
            }
            total += s[axis - 1]; // at most 100000 inputs of at most 2^28 each: no overflow
        }
        checkElements(numel(first) / first[axis - 1] * total, "the output");
        int[] out = first.clone();
        out[axis - 1] = (int) total;
        return new Inference(out, numel(out));
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        final int axis = intAttr(node, "axis") - 1; // in the per-sample shape
        final int[] first = inputs.get(0);
        final int count = inputs.size();
        final int[] blocks = new int[count]; // elements per outer index of each input
        int inner = 1;
        for (int d = axis + 1; d < first.length; d++) {
            inner *= first[d];
        }
        int outBlock = 0;
        for (int k = 0; k < count; k++) {
            blocks[k] = inputs.get(k)[axis] * inner;
            outBlock += blocks[k];
        }
        int outerSize = 1;
        for (int d = 0; d < axis; d++) {
            outerSize *= first[d];
        }
        final int outer = outerSize;
        final int block = outBlock;
        return new Kernel() {
            @Override
            public float[] run(int batch, float[][] xs) {
                float[] y = new float[batch * outer * block];
                for (int o = 0; o < batch * outer; o++) {
                    int position = o * block;
                    for (int k = 0; k < count; k++) {
                        System.arraycopy(xs[k], o * blocks[k], y, position, blocks[k]);
                        position += blocks[k];
                    }
                }
                return y;
            }
        };
    }
}
