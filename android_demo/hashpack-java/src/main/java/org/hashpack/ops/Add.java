package org.hashpack.ops;

import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/**
 * {@code Add}: {@code a + b}, with b of a's shape or broadcastable to it: same rank, each dimension
 * of b equal to a's or 1. The output has a's shape.
 */
final class Add extends Op {
    Add() {
        super("Add", 2);
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException {
        int[] a = inputs.get(0);
        int[] b = inputs.get(1);
        boolean ok = a.length == b.length;
        for (int i = 0; ok && i < a.length; i++) {
            ok = b[i] == a[i] || b[i] == 1;
        }
        if (!ok) {
            throw new ShapeException("second input " + show(b) + " does not broadcast to the first " + show(a));
        }
        return new Inference(a.clone(), numel(a));
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        final int[] a = inputs.get(0);
        final int[] b = inputs.get(1);
        if (java.util.Arrays.equals(a, b)) {
            return new Kernel() {
                @Override
                public float[] run(int batch, float[][] xs) {
                    float[] x = xs[0];
                    float[] z = xs[1];
                    float[] y = new float[x.length];
                    for (int i = 0; i < x.length; i++) {
                        y[i] = x[i] + z[i];
                    }
                    return y;
                }
            };
        }
        // Broadcast: b's strides are 0 along its size-1 dimensions; walk a's multi-index.
        final int rank = a.length;
        final int[] bStride = new int[rank];
        int stride = 1;
        for (int d = rank - 1; d >= 0; d--) {
            bStride[d] = b[d] == 1 ? 0 : stride;
            stride *= b[d];
        }
        final int bSample = stride;
        final int aSample = (int) numel(a);
        return new Kernel() {
            @Override
            public float[] run(int batch, float[][] xs) {
                float[] x = xs[0];
                float[] z = xs[1];
                float[] y = new float[x.length];
                int[] index = new int[rank];
                for (int n = 0; n < batch; n++) {
                    int i = n * aSample;
                    int bBase = n * bSample;
                    int bOffset = 0;
                    java.util.Arrays.fill(index, 0);
                    for (int k = 0; k < aSample; k++, i++) {
                        y[i] = x[i] + z[bBase + bOffset];
                        for (int d = rank - 1; d >= 0; d--) { // increment the multi-index
                            index[d]++;
                            bOffset += bStride[d];
                            if (index[d] < a[d]) {
                                break;
                            }
                            bOffset -= bStride[d] * a[d];
                            index[d] = 0;
                        }
                    }
                }
                return y;
            }
        };
    }
}
