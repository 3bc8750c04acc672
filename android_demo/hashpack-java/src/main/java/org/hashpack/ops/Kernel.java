package org.hashpack.ops;

/** One node bound to its input shapes and weights: everything is checked beforehand, run only computes. */
public interface Kernel {
    /**
     * Computes the output for a batch. {@code inputs[k]} holds {@code batch} samples of the k-th
     * input's shape, row-major. The result holds {@code batch} samples of the node's output shape;
     * it may be an input array itself (for pure reshapes), so inputs must not be modified afterwards.
     */
    float[] run(int batch, float[][] inputs);
}
