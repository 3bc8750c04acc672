package org.hashpack.ops;

/**
 * The kernel of an op whose first input is int32 token ids ({@link Op#takesIds()}, Embedding): the
 * ids come as an {@code int[]} (exact for every id, unlike a float), never through
 * {@link Kernel#run}.
 */
public interface IdsKernel extends Kernel {
    /**
     * Computes the output for {@code batch} samples of ids (row-major, the graph input's shape).
     *
     * @throws org.hashpack.IdsOutOfRangeException if an id is not a row of the table
     */
    float[] runIds(int batch, int[] ids);
}
