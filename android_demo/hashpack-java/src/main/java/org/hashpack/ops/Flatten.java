package org.hashpack.ops;

import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/** {@code Flatten}: merges dimensions {@code start_dim} (at least 1: never the batch) through the last. */
final class Flatten extends Op {
    Flatten() {
        super("Flatten", 1);
        attr("start_dim", AttrKind.INT);
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException {
        int[] x = inputs.get(0);
        int rank = x.length + 1;
        int start = intAttr(node, "start_dim");
        if (start < 1 || start >= rank) {
            throw new ShapeException("start_dim " + start + " is out of range [1, " + rank + ") for input " + show(x));
        }
        int[] out = new int[start];
        System.arraycopy(x, 0, out, 0, start - 1);
        long merged = 1;
        for (int i = start - 1; i < x.length; i++) {
            merged *= x[i]; // at most MAX_ACTIVATIONS: the input passed the limits
        }
        out[start - 1] = (int) merged;
        return new Inference(out, numel(x));
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        return Reshape.VIEW;
    }
}
