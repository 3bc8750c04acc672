package org.hashpack.ops;

import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/**
 * {@code Gelu}: {@code F.gelu(x, approximate="none")} = {@code x·(1 + erf(x/√2))/2} when
 * {@code approximate} is false, {@code F.gelu(x, approximate="tanh")} =
 * {@code x·(1 + tanh(√(2/π)(x + 0.044715x³)))/2} when true; computed in float64, rounded once.
 */
public final class Gelu extends Op {
    private static final double SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
    private static final double TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

    Gelu() {
        super("Gelu", 1);
        attr("approximate", AttrKind.BOOL);
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException {
        int[] x = inputs.get(0);
        return new Inference(x.clone(), numel(x));
    }

    @Override
    public Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params) {
        final boolean tanh = boolAttr(node, "approximate");
        return new Kernel() {
            @Override
            public float[] run(int batch, float[][] xs) {
                float[] in = xs[0];
                float[] y = new float[in.length];
                for (int i = 0; i < in.length; i++) {
                    y[i] = tanh ? tanhForm(in[i]) : erfForm(in[i]);
                }
                return y;
            }
        };
    }

    static float tanhForm(float x) {
        double v = x;
        return (float) (0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v))));
    }

    static float erfForm(float x) {
        double v = x;
        return (float) (0.5 * v * (1 + erf(v / Math.sqrt(2))));
    }

    /**
     * erf to about 1e-15 (Java 8 has none): {@code 2/√π · e^{-z²} · Σ 2^n z^{2n+1} / (2n+1)!!}, a
     * series of positive terms (no cancellation) that converges for every z; beyond |z| = 6, erf is
     * ±1 to double precision (erfc(6) < 3e-17).
     */
    public static double erf(double z) {
        if (Double.isNaN(z)) {
            return z;
        }
        double a = Math.abs(z);
        if (a >= 6) {
            return Math.signum(z);
        }
        double square = a * a;
        double term = a;
        double sum = a;
        for (int n = 1; n < 400; n++) {
            term *= 2 * square / (2 * n + 1);
            sum += term;
            if (term < sum * 1e-17) {
                break;
            }
        }
        double result = TWO_OVER_SQRT_PI * Math.exp(-square) * sum;
        return z < 0 ? -result : result;
    }
}
