package org.hashpack.ops;

/**
 * One node bound to its input shapes and weights: everything is checked and precomputed at bind
 * time, so {@link #run} only computes.
 */
public interface Kernel {
    /** The output shape without the batch dimension. */
    int[] outputShape();

    /**
     * Computes the output for a batch. {@code inputs[k]} holds {@code batch} samples of the k-th
     * input's shape, row-major. The result has {@code batch * numel(outputShape())} values; it may be
     * an input array itself (for pure reshapes), so inputs must not be modified afterwards.
     */
    float[] run(int batch, float[][] inputs);
}
