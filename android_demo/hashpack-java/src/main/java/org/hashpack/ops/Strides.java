package org.hashpack.ops;

/** Row-major index arithmetic for the layout ops (shapes per sample, as everywhere in this package). */
final class Strides {
    private Strides() {}

    /** Row-major strides of {@code shape}. */
    static int[] of(int[] shape) {
        int[] strides = new int[shape.length];
        int stride = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            strides[d] = stride;
            stride *= shape[d];
        }
        return strides;
    }

    /**
     * Advances the multi-index {@code index} over {@code shape} by one row-major step along
     * dimensions {@code 0..last-1}, moving each {@code offsets[j]} by {@code strides[j]} to match.
     */
    static void step(int[] index, int[] shape, int last, int[][] strides, int[] offsets) {
        for (int d = last - 1; d >= 0; d--) {
            index[d]++;
            if (index[d] < shape[d]) {
                for (int j = 0; j < offsets.length; j++) {
                    offsets[j] += strides[j][d];
                }
                return;
            }
            index[d] = 0;
            for (int j = 0; j < offsets.length; j++) {
                offsets[j] -= strides[j][d] * (shape[d] - 1);
            }
        }
    }
}
