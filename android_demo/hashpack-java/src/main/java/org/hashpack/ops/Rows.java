package org.hashpack.ops;

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
}
