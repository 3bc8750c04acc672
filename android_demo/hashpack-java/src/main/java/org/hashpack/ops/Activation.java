package org.hashpack.ops;

import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/**
 * The elementwise activations {@code Relu}, {@code Relu6}, {@code Sigmoid}, {@code Tanh},
 * {@code Hardswish}, {@code Hardsigmoid} and {@code Silu} (float32, in torch's CPU formulation).
 */
final class Activation extends Op {
    enum Function {
        RELU("Relu"),
        RELU6("Relu6"),
        SIGMOID("Sigmoid"),
        TANH("Tanh"),
        HARDSWISH("Hardswish"),
        HARDSIGMOID("Hardsigmoid"),
        SILU("Silu");

        final String opName;

        Function(String opName) {
            this.opName = opName;
        }
    }

    private final Function function;

    Activation(Function function) {
        super(function.opName, 1);
        this.function = function;
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) {
        return new Inference(inputs.get(0).clone(), numel(inputs.get(0)));
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        return new Kernel() {
            @Override
            public float[] run(int batch, float[][] xs) {
                float[] x = xs[0];
                float[] y = new float[x.length];
                switch (function) {
                    case RELU:
                        for (int i = 0; i < x.length; i++) {
                            y[i] = Math.max(x[i], 0f);
                        }
                        break;
                    case RELU6:
                        for (int i = 0; i < x.length; i++) {
                            y[i] = Math.min(Math.max(x[i], 0f), 6f);
                        }
                        break;
                    case SIGMOID:
                        for (int i = 0; i < x.length; i++) {
                            float e = (float) Math.exp(-x[i]);
                            y[i] = 1f / (1f + e);
                        }
                        break;
                    case TANH:
                        for (int i = 0; i < x.length; i++) {
                            y[i] = (float) Math.tanh(x[i]);
                        }
                        break;
                    case HARDSWISH: // x * relu6(x + 3) / 6
                        for (int i = 0; i < x.length; i++) {
                            y[i] = x[i] * Math.min(Math.max(x[i] + 3f, 0f), 6f) / 6f;
                        }
                        break;
                    case HARDSIGMOID: // relu6(x + 3) / 6
                        for (int i = 0; i < x.length; i++) {
                            y[i] = Math.min(Math.max(x[i] + 3f, 0f), 6f) / 6f;
                        }
                        break;
                    case SILU: // x * sigmoid(x), as torch computes it: x / (1 + exp(-x))
                        for (int i = 0; i < x.length; i++) {
                            y[i] = x[i] / (1f + (float) Math.exp(-x[i]));
                        }
                        break;
                    default:
                        throw new AssertionError(function);
                }
                return y;
            }
        };
    }
}
