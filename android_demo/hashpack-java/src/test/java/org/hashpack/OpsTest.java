package org.hashpack;

import static org.hashpack.TestSupport.ints;
import static org.hashpack.TestSupport.list;
import static org.hashpack.TestSupport.obj;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;

import java.util.Map;
import java.util.Random;
import org.junit.Test;

/**
 * The kernels against direct transcriptions of the PyTorch definitions, on random configurations
 * (strides, paddings, dilations, groups, non-square inputs) the fixtures do not all reach.
 */
public class OpsTest {
    private final Random random = new Random(1234);

    private float[] randn(int n) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) random.nextGaussian();
        }
        return out;
    }

    private static Model model(TestHpk hpk) {
        try {
            return new Model(hpk.read());
        } catch (HpkFormatException e) {
            throw new AssertionError(e);
        }
    }

    private static void assertClose(String what, float[] expected, float[] actual) {
        assertEquals(what + ": length", expected.length, actual.length);
        for (int i = 0; i < expected.length; i++) {
            double tolerance = 1e-5 * Math.max(1, Math.abs(expected[i]));
            if (!(Math.abs(expected[i] - actual[i]) <= tolerance)) {
                throw new AssertionError(what + " [" + i + "]: expected " + expected[i] + ", got " + actual[i]);
            }
        }
    }

    @Test
    public void conv2dMatchesDirectDefinition() {
        int tested = 0;
        while (tested < 80) {
            int groups = 1 + random.nextInt(3);
            int groupIn = 1 + random.nextInt(3);
            int outPerGroup = 1 + random.nextInt(3);
            int c = groups * groupIn;
            int o = groups * outPerGroup;
            int h = 3 + random.nextInt(7);
            int w = 3 + random.nextInt(7);
            int kh = 1 + random.nextInt(4);
            int kw = 1 + random.nextInt(4);
            int[] s = {1 + random.nextInt(3), 1 + random.nextInt(3)};
            int[] p = {random.nextInt(3), random.nextInt(3)};
            int[] d = {1 + random.nextInt(3), 1 + random.nextInt(3)};
            int spanH = d[0] * (kh - 1) + 1;
            int spanW = d[1] * (kw - 1) + 1;
            if (h + 2 * p[0] < spanH || w + 2 * p[1] < spanW) {
                continue;
            }
            int ho = (h + 2 * p[0] - spanH) / s[0] + 1;
            int wo = (w + 2 * p[1] - spanW) / s[1] + 1;
            boolean hasBias = random.nextBoolean();
            int batch = 1 + random.nextInt(2);
            float[] x = randn(batch * c * h * w);
            float[] weight = randn(o * groupIn * kh * kw);
            float[] bias = randn(o);
            TestHpk.Builder b = TestHpk.builder(c, h, w).dense("w", new int[] {o, groupIn, kh, kw}, weight);
            Map<String, Object> params = obj("weight", "w");
            if (hasBias) {
                b.dense("b", new int[] {o}, bias);
                params.put("bias", "b");
            }
            Model m = model(b.node("Conv2d", "conv", list("x"), params, obj("stride", ints(s[0], s[1]),
                    "padding", ints(p[0], p[1]), "dilation", ints(d[0], d[1]), "groups", groups)).output("conv", o, ho, wo));
            float[] expected = new float[batch * o * ho * wo];
            for (int n = 0; n < batch; n++) {
                for (int oc = 0; oc < o; oc++) {
                    int g = oc / outPerGroup;
                    for (int oy = 0; oy < ho; oy++) {
                        for (int ox = 0; ox < wo; ox++) {
                            double sum = hasBias ? bias[oc] : 0;
                            for (int ic = 0; ic < groupIn; ic++) {
                                for (int ky = 0; ky < kh; ky++) {
                                    for (int kx = 0; kx < kw; kx++) {
                                        int iy = oy * s[0] - p[0] + ky * d[0];
                                        int ix = ox * s[1] - p[1] + kx * d[1];
                                        if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
                                            sum += (double) x[((n * c + g * groupIn + ic) * h + iy) * w + ix]
                                                    * weight[((oc * groupIn + ic) * kh + ky) * kw + kx];
                                        }
                                    }
                                }
                            }
                            expected[((n * o + oc) * ho + oy) * wo + ox] = (float) sum;
                        }
                    }
                }
            }
            assertClose("conv " + tested, expected, m.run(x, batch));
            tested++;
        }
    }

    @Test
    public void poolsMatchDirectDefinition() {
        int tested = 0;
        while (tested < 80) {
            int c = 1 + random.nextInt(3);
            int h = 2 + random.nextInt(8);
            int w = 2 + random.nextInt(8);
            int[] k = {1 + random.nextInt(4), 1 + random.nextInt(4)};
            int[] s = {1 + random.nextInt(3), 1 + random.nextInt(3)};
            int[] p = {random.nextInt(k[0] / 2 + 1), random.nextInt(k[1] / 2 + 1)};
            int[] d = {1 + random.nextInt(2), 1 + random.nextInt(2)};
            boolean max = random.nextBoolean();
            boolean includePad = random.nextBoolean();
            if (!max) {
                d = new int[] {1, 1};
            }
            int spanH = d[0] * (k[0] - 1) + 1;
            int spanW = d[1] * (k[1] - 1) + 1;
            if (h + 2 * p[0] < spanH || w + 2 * p[1] < spanW) {
                continue;
            }
            int ho = (h + 2 * p[0] - spanH) / s[0] + 1;
            int wo = (w + 2 * p[1] - spanW) / s[1] + 1;
            Map<String, Object> attrs = obj("kernel", ints(k[0], k[1]), "stride", ints(s[0], s[1]),
                    "padding", ints(p[0], p[1]));
            attrs.put(max ? "dilation" : "count_include_pad", max ? ints(d[0], d[1]) : (Object) includePad);
            Model m = model(TestHpk.builder(c, h, w).node(max ? "MaxPool2d" : "AvgPool2d", "pool", list("x"), obj(),
                    attrs).output("pool", c, ho, wo));
            float[] x = randn(2 * c * h * w);
            float[] expected = new float[2 * c * ho * wo];
            for (int nc = 0; nc < 2 * c; nc++) {
                for (int oy = 0; oy < ho; oy++) {
                    for (int ox = 0; ox < wo; ox++) {
                        double acc = max ? Double.NEGATIVE_INFINITY : 0;
                        int count = 0;
                        for (int ky = 0; ky < k[0]; ky++) {
                            for (int kx = 0; kx < k[1]; kx++) {
                                int iy = oy * s[0] - p[0] + ky * d[0];
                                int ix = ox * s[1] - p[1] + kx * d[1];
                                if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
                                    float v = x[(nc * h + iy) * w + ix];
                                    acc = max ? Math.max(acc, v) : acc + v;
                                    count++;
                                }
                            }
                        }
                        expected[(nc * ho + oy) * wo + ox] = (float) (max ? acc
                                : acc / (includePad ? k[0] * k[1] : count));
                    }
                }
            }
            assertClose((max ? "max" : "avg") + " pool " + tested, expected, m.run(x, 2));
            tested++;
        }
    }

    @Test
    public void softmaxOverEachAxis() {
        int[] shape = {2, 3, 4}; // per sample; batch 2 -> full [2, 2, 3, 4]
        float[] x = randn(2 * 24);
        for (int axis = -3; axis < 4; axis++) { // every axis but the batch's (0 or -4)
            if (axis == 0) {
                continue;
            }
            Model m = model(TestHpk.builder(shape).node("Softmax", "s", list("x"), obj(), obj("axis", axis))
                    .output("s", shape));
            int dim = axis < 0 ? axis + 4 : axis;
            int[] full = {2, 2, 3, 4};
            int[] strides = {24, 12, 4, 1};
            float[] expected = new float[x.length];
            for (int i = 0; i < x.length; i++) {
                int coordinate = (i / strides[dim]) % full[dim];
                int base = i - coordinate * strides[dim];
                double sum = 0;
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < full[dim]; j++) {
                    max = Math.max(max, x[base + j * strides[dim]]);
                }
                for (int j = 0; j < full[dim]; j++) {
                    sum += Math.exp(x[base + j * strides[dim]] - max);
                }
                expected[i] = (float) (Math.exp(x[i] - max) / sum);
            }
            assertClose("softmax axis " + axis, expected, m.run(x, 2));
        }
    }

    @Test
    public void addBroadcastsSizeOneDimensions() {
        int[] a = {3, 4, 5};
        for (int mask = 0; mask < 8; mask++) {
            int[] b = {(mask & 1) != 0 ? 1 : 3, (mask & 2) != 0 ? 1 : 4, (mask & 4) != 0 ? 1 : 5};
            // The graph has one input, so b is derived from a: spatial dimensions reduced to 1 by an
            // average pool, the channel dimension by a 1x1 conv with weights 1 (a channel sum).
            TestHpk.Builder builder = TestHpk.builder(a);
            String bName = "x";
            if (b[1] == 1 || b[2] == 1) {
                builder.node("AvgPool2d", "p", list("x"), obj(), obj("kernel", ints(b[1] == 1 ? 4 : 1, b[2] == 1 ? 5 : 1),
                        "stride", ints(1, 1), "padding", ints(0, 0), "count_include_pad", true));
                bName = "p";
            }
            if (b[0] == 1) {
                builder.dense("w", new int[] {1, 3, 1, 1}, 1f, 1f, 1f).node("Conv2d", "c", list(bName),
                        obj("weight", "w"), obj("stride", ints(1, 1), "padding", ints(0, 0), "dilation", ints(1, 1),
                                "groups", 1));
                bName = "c";
            }
            Model m = model(builder.node("Add", "sum", list("x", bName), obj(), obj()).output("sum", a));
            float[] x = randn(2 * 60);
            float[] expected = new float[x.length];
            for (int n = 0; n < 2; n++) {
                for (int i = 0; i < 3; i++) {
                    for (int j = 0; j < 4; j++) {
                        for (int k = 0; k < 5; k++) {
                            double bv = 0; // b[n, i', j', k'] = sum over reduced dims (channel sum, spatial mean)
                            int count = 0;
                            for (int ii = 0; ii < 3; ii++) {
                                for (int jj = 0; jj < 4; jj++) {
                                    for (int kk = 0; kk < 5; kk++) {
                                        if ((b[0] == 3 && ii != i) || (b[1] == 4 && jj != j) || (b[2] == 5 && kk != k)) {
                                            continue;
                                        }
                                        bv += x[n * 60 + ii * 20 + jj * 5 + kk];
                                        count++;
                                    }
                                }
                            }
                            int spatial = (b[1] == 1 ? 4 : 1) * (b[2] == 1 ? 5 : 1);
                            double value = bv / spatial; // channels are summed (weights 1), space averaged
                            assertEquals(count, (b[0] == 1 ? 3 : 1) * spatial);
                            int idx = n * 60 + i * 20 + j * 5 + k;
                            expected[idx] = (float) (x[idx] + value);
                        }
                    }
                }
            }
            assertClose("add mask " + mask, expected, m.run(x, 2));
        }
    }

    @Test
    public void concatAlongEachAxis() {
        for (int axis = 1; axis <= 3; axis++) {
            int[] shape = {2, 3, 4};
            int[] doubled = shape.clone();
            doubled[axis - 1] *= 3;
            Model m = model(TestHpk.builder(shape).node("Relu", "r", "x").node("Tanh", "t", "x")
                    .node("Concat", "c", list("x", "r", "t"), obj(), obj("axis", axis)).output("c", doubled));
            float[] x = randn(2 * 24);
            float[] y = m.run(x, 2);
            // read back element (n, i, j, k) of each part
            int[] out = doubled;
            for (int n = 0; n < 2; n++) {
                for (int i = 0; i < 2; i++) {
                    for (int j = 0; j < 3; j++) {
                        for (int k = 0; k < 4; k++) {
                            float v = x[n * 24 + i * 12 + j * 4 + k];
                            float[] parts = {v, Math.max(v, 0f), (float) Math.tanh(v)};
                            for (int part = 0; part < 3; part++) {
                                int[] idx = {i, j, k};
                                idx[axis - 1] += part * shape[axis - 1];
                                int flat = n * 72 + (idx[0] * out[1] + idx[1]) * out[2] + idx[2];
                                assertEquals("axis " + axis, parts[part], y[flat], 0f);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    public void linearBatchNormAndActivations() {
        float[] w = {1, 2, 3, -1, 0.5f, 0};
        Model m = model(TestHpk.builder(3).dense("w", new int[] {2, 3}, w)
                .dense("g", new int[] {2}, 2, 1).dense("b", new int[] {2}, 0.5f, -1).dense("mu", new int[] {2}, 1, 0)
                .dense("var", new int[] {2}, 3, 0.25f)
                .node("Linear", "l", list("x"), obj("weight", "w"), obj())
                .node("BatchNorm", "bn", list("l"), obj("weight", "g", "bias", "b", "running_mean", "mu",
                        "running_var", "var"), obj("eps", 1))
                .node("Relu6", "r6", "bn").node("Sigmoid", "s", "r6").output("s", 2));
        float[] x = {1, 1, 1, 10, -10, 0};
        float[] y = m.run(x, 2);
        float[][] lin = {{6, -0.5f}, {-10, -15}};
        for (int n = 0; n < 2; n++) {
            float bn0 = (lin[n][0] - 1) * (2f / (float) Math.sqrt(4)) + 0.5f;
            float bn1 = (lin[n][1] - 0) * (1f / (float) Math.sqrt(1.25f)) - 1;
            float[] r6 = {Math.min(Math.max(bn0, 0), 6), Math.min(Math.max(bn1, 0), 6)};
            for (int o = 0; o < 2; o++) {
                assertEquals(1 / (1 + Math.exp(-r6[o])), y[n * 2 + o], 1e-6);
            }
        }
    }

    @Test
    public void reshapeAndFlattenKeepRowMajorOrder() {
        Model m = model(TestHpk.builder(2, 3, 4).node("Reshape", "r", list("x"), obj(), obj("shape", ints(4, 6)))
                .node("Flatten", "f", list("r"), obj(), obj("start_dim", 1)).output("f", 24));
        float[] x = randn(48);
        assertArrayEquals(x, m.run(x, 2), 0f);
        assertEquals(24, m.outputShape()[0]);
    }

    @Test
    public void globalAvgPoolIsTheSpatialMean() {
        Model m = model(TestHpk.builder(2, 3, 5).node("GlobalAvgPool", "g", "x").output("g", 2, 1, 1));
        float[] x = randn(30);
        float[] y = m.run(x, 1);
        for (int c = 0; c < 2; c++) {
            double sum = 0;
            for (int i = 0; i < 15; i++) {
                sum += x[c * 15 + i];
            }
            assertEquals(sum / 15, y[c], 1e-6);
        }
    }

    @Test
    public void hashedParamsDecodeFromTheirSpace() throws HpkFormatException {
        float[] space = {0.5f, -2f, 3.25f};
        Model m = model(TestHpk.builder(4).space("s", space).hashed("w", "s", 42, 3, 4).hashed("b", "s", 7, 3)
                .node("Linear", "l", list("x"), obj("weight", "w", "bias", "b"), obj()).output("l", 3));
        Hp32 h = new Hp32(42, 0);
        float[] w = m.weight("w").data();
        for (int i = 0; i < 12; i++) {
            assertEquals(h.sign(i) * space[(int) h.bucket(i, 3)], w[i], 0f);
        }
        Hp32 hb = new Hp32(7, 0);
        for (int i = 0; i < 3; i++) {
            assertEquals(hb.sign(i) * space[(int) hb.bucket(i, 3)], m.weight("b").data()[i], 0f);
        }
    }
}
