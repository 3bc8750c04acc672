package org.hashpack.ops;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.hashpack.IdsOutOfRangeException;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/**
 * {@code Embedding}: {@code F.embedding(ids, weight)} for int32 ids {@code [N, …]} (the int32 graph
 * input) and a table {@code [V, D]}: output {@code [N, …, D]}. Rows of ids equal to the optional
 * {@code padding_idx} read as zero (a hashed table cannot store a zero row). An id outside
 * {@code [0, V)} is an {@link IdsOutOfRangeException}, raised before anything is computed.
 */
public final class Embedding extends Op {
    Embedding() {
        super("Embedding", 1);
        param("weight", 2);
        optionalAttr("padding_idx", AttrKind.INT);
        idsInput();
    }

    @Override
    protected String validate(Node node, Map<String, Param> params) {
        int rows = params.get("weight").shape()[0];
        if (node.attrs().containsKey("padding_idx")) {
            int padding = intAttr(node, "padding_idx");
            if (padding < 0 || padding >= rows) {
                return "padding_idx " + padding + " is not a row of the [" + rows + ", …] table";
            }
        }
        return null;
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException {
        int[] ids = inputs.get(0);
        if (ids.length > 6) {
            throw new ShapeException("ids " + show(ids) + " have more than 7 dimensions (the output adds one)");
        }
        int[] out = Arrays.copyOf(ids, ids.length + 1);
        out[ids.length] = params.get("weight").shape()[1];
        return new Inference(out, numel(out));
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        return gather(node, decoded(params.get("weight")));
    }

    /** The rows of a decoded {@code [V, D]} table. */
    private static Rows decoded(final Tensor table) {
        return new Rows() {
            @Override
            public int rows() {
                return table.dim(0);
            }

            @Override
            public int width() {
                return table.dim(1);
            }

            @Override
            public void copy(int row, float[] out, int offset) {
                System.arraycopy(table.data(), row * table.dim(1), out, offset, table.dim(1));
            }
        };
    }

    /** The kernel of a checked Embedding node reading its table through {@code table}. */
    public static IdsKernel gather(Node node, final Rows table) {
        final int padding = node.attrs().containsKey("padding_idx") ? intAttr(node, "padding_idx") : -1;
        return new IdsKernel() {
            @Override
            public float[] runIds(int batch, int[] ids) {
                int rows = table.rows();
                for (int id : ids) {
                    if (id < 0 || id >= rows) {
                        throw new IdsOutOfRangeException("token id " + id + " is outside the table's [0, " + rows
                                + ") rows");
                    }
                }
                int width = table.width();
                float[] y = new float[ids.length * width];
                for (int i = 0; i < ids.length; i++) {
                    if (ids[i] != padding) {
                        table.copy(ids[i], y, i * width);
                    }
                }
                return y;
            }

            @Override
            public float[] run(int batch, float[][] inputs) {
                throw new IllegalStateException("Embedding takes int32 ids: call runIds");
            }
        };
    }
}
