package org.hashpack.ops;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/** {@code Reshape}: to {@code [N, *shape]}, every target dimension given and positive (no -1). */
final class Reshape extends Op {
    /** The kernel of pure reshapes: row-major data is unchanged. */
    static final Kernel VIEW = new Kernel() {
        @Override
        public float[] run(int batch, float[][] inputs) {
            return inputs[0];
        }
    };

    Reshape() {
        super("Reshape", 1);
        attr("shape", AttrKind.INTS);
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException {
        int[] x = inputs.get(0);
        int[] target = intsAttr(node, "shape");
        boolean positive = target.length <= 7;
        for (int d : target) {
            positive &= d >= 1;
        }
        if (!positive) {
            throw new ShapeException("shape " + Arrays.toString(target)
                    + " is not at most 7 positive dimensions (the batch excluded)");
        }
        if (numel(target) != numel(x)) {
            throw new ShapeException(String.format("cannot reshape input %s (%.0f per sample) to [N, *%s]", show(x),
                    numel(x), Arrays.toString(target)));
        }
        return new Inference(target, numel(x));
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        return VIEW;
    }
}
