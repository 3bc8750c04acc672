package org.hashpack.ops;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/**
 * {@code Constant}: the param {@code value} {@code [d1..dr]} repeated over the batch of its one input
 * (whose values are not read): output {@code [N, d1..dr]}. Class tokens, positional embeddings and
 * other {@code get_attr} tensors a graph uses directly.
 */
final class Constant extends Op {
    Constant() {
        super("Constant", 1);
        param("value", ANY_RANK);
    }

    @Override
    protected String validate(Node node, Map<String, Param> params) {
        Param value = params.get("value");
        if (value.rank() < 1 || value.rank() > 7) {
            return "value " + Arrays.toString(value.shape()) + " must have 1 to 7 dimensions (the batch is added)";
        }
        return null;
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException {
        int[] out = params.get("value").shape();
        return new Inference(out, numel(out));
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        final float[] value = params.get("value").data();
        return new Kernel() {
            @Override
            public float[] run(int batch, float[][] xs) {
                float[] y = new float[batch * value.length];
                for (int n = 0; n < batch; n++) {
                    System.arraycopy(value, 0, y, n * value.length, value.length);
                }
                return y;
            }
        };
    }
}
