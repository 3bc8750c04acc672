package org.hashpack.ops;

import org.hashpack.Tensor;

/**
 * The rows of an embedding table {@code [V, D]}, fetched one at a time: a decoded table copies
 * them, a hashed one regenerates only the rows a batch looks up (flat indices {@code id·D + j}).
 */
public interface Rows {
    /** V. */
    int rows();

    /** D. */
    int width();

    /** Writes row {@code row} (in {@code [0, V)}) to {@code out[offset .. offset + D)}. */
    void copy(int row, float[] out, int offset);

    /** The rows of a decoded {@code [V, D]} tensor. */
    static Rows of(final Tensor table) {
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
}
