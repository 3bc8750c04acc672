package org.hashpack;

import static org.hashpack.TestSupport.ints;
import static org.hashpack.TestSupport.list;
import static org.hashpack.TestSupport.obj;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.Test;

/**
 * The ops added for the torchvision mobile zoo (docs/FORMAT.md §5: Mul, Hardswish, Hardsigmoid,
 * Silu, AdaptiveAvgPool2d, AdaptiveMaxPool2d, ceil-mode MaxPool2d/AvgPool2d, Transpose, Slice,
 * Mean) against direct transcriptions of the PyTorch definitions, on random shapes and attrs. The
 * fixtures (FixtureModelsTest) check the same ops against the numpy runtime and PyTorch.
 */
public class ZooOpsTest {
    private final Random random = new Random(4321);

    private float[] randn(int n) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) random.nextGaussian() * 4;
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
            if (expected[i] != actual[i] && !(Math.abs(expected[i] - actual[i]) <= tolerance)) {
                throw new AssertionError(what + " [" + i + "]: expected " + expected[i] + ", got " + actual[i]);
            }
        }
    }

    private int[] randomShape(int rank, int maxDim) {
        int[] shape = new int[rank];
        for (int d = 0; d < rank; d++) {
            shape[d] = 1 + random.nextInt(maxDim);
        }
        return shape;
    }

    /** Row-major multi-index of flat position {@code flat} in {@code shape}. */
    private static int[] unravel(int flat, int[] shape) {
        int[] index = new int[shape.length];
        for (int d = shape.length - 1; d >= 0; d--) {
            index[d] = flat % shape[d];
            flat /= shape[d];
        }
        return index;
    }

    private static int ravel(int[] index, int[] shape) {
        int flat = 0;
        for (int d = 0; d < shape.length; d++) {
            flat = flat * shape[d] + index[d];
        }
        return flat;
    }

    @Test
    public void hardActivationsAndSilu() {
        float[] x = randn(2 * 200);
        x[0] = -3;
        x[1] = 3;
        x[2] = 0;
        x[3] = -100;
        x[4] = 100;
        for (String op : new String[] {"Hardswish", "Hardsigmoid", "Silu"}) {
            Model m = model(TestHpk.builder(4, 5, 10).node(op, "a", "x").output("a", 4, 5, 10));
            float[] y = m.run(x, 2);
            float[] expected = new float[x.length];
            for (int i = 0; i < x.length; i++) {
                double v = x[i];
                double relu6 = Math.min(Math.max(v + 3, 0), 6);
                expected[i] = (float) ("Hardswish".equals(op) ? v * relu6 / 6
                        : "Hardsigmoid".equals(op) ? relu6 / 6 : v / (1 + Math.exp(-v)));
            }
            assertClose(op, expected, y);
            if (!"Silu".equals(op)) {
                assertEquals(op + "(-3)", 0f, y[0], 0f);
                assertEquals(op + "(3)", "Hardswish".equals(op) ? 3f : 1f, y[1], 0f);
            }
        }
    }

    /**
     * Mul of every broadcast pattern of [C, H, W]: both operands are derived from the one graph
     * input by Mean(keepdim) over a subset of axes (so each side's size-1 axes are arbitrary).
     */
    @Test
    public void mulBroadcastsBothWays() {
        int[] x = {3, 4, 5};
        for (int maskA = 0; maskA < 8; maskA++) {
            for (int maskB = 0; maskB < 8; maskB++) {
                TestHpk.Builder b = TestHpk.builder(x);
                String[] names = new String[2];
                int[][] shapes = new int[2][];
                int[] masks = {maskA, maskB};
                for (int side = 0; side < 2; side++) {
                    List<Integer> dims = new ArrayList<>();
                    shapes[side] = x.clone();
                    for (int d = 0; d < 3; d++) {
                        if ((masks[side] & (1 << d)) != 0) {
                            dims.add(d + 1);
                            shapes[side][d] = 1;
                        }
                    }
                    if (dims.isEmpty()) {
                        names[side] = "x";
                        continue;
                    }
                    Collections.shuffle(dims, random);
                    int[] dimArray = new int[dims.size()];
                    for (int i = 0; i < dimArray.length; i++) {
                        dimArray[i] = dims.get(i);
                    }
                    names[side] = "m" + side;
                    b.node("Mean", names[side], list("x"), obj(), obj("dims", ints(dimArray), "keepdim", true));
                }
                int[] out = new int[3];
                for (int d = 0; d < 3; d++) {
                    out[d] = Math.max(shapes[0][d], shapes[1][d]);
                }
                Model m = model(b.node("Mul", "p", list(names[0], names[1]), obj(), obj()).output("p", out));
                float[] in = randn(2 * 60);
                float[][] means = {mean(in, x, masks[0]), mean(in, x, masks[1])};
                float[] expected = new float[2 * TestSupport.numel(out)];
                for (int i = 0; i < expected.length; i++) {
                    int[] index = unravel(i, new int[] {2, out[0], out[1], out[2]});
                    float[] factors = new float[2];
                    for (int side = 0; side < 2; side++) {
                        int[] at = index.clone();
                        for (int d = 0; d < 3; d++) {
                            if (shapes[side][d] == 1) {
                                at[d + 1] = 0;
                            }
                        }
                        factors[side] = means[side][ravel(at, new int[] {2, shapes[side][0], shapes[side][1],
                                shapes[side][2]})];
                    }
                    expected[i] = factors[0] * factors[1];
                }
                assertClose("mul masks " + maskA + "," + maskB, expected, m.run(in, 2));
            }
        }
    }

    /** x.mean(dims with bit d of mask set, keepdim=True) for a batch of 2 samples of shape x. */
    private static float[] mean(float[] in, int[] x, int mask) {
        int[] kept = x.clone();
        int count = 1;
        for (int d = 0; d < x.length; d++) {
            if ((mask & (1 << d)) != 0) {
                kept[d] = 1;
                count *= x[d];
            }
        }
        int[] full = {2, x[0], x[1], x[2]};
        int[] outFull = {2, kept[0], kept[1], kept[2]};
        double[] sums = new double[2 * TestSupport.numel(kept)];
        for (int i = 0; i < in.length; i++) {
            int[] index = unravel(i, full);
            for (int d = 0; d < x.length; d++) {
                if (kept[d] == 1) {
                    index[d + 1] = 0;
                }
            }
            sums[ravel(index, outFull)] += in[i];
        }
        float[] out = new float[sums.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) (sums[i] / count);
        }
        return out;
    }

    @Test
    public void meanOverAnyAxesWithAndWithoutKeepdim() {
        for (int trial = 0; trial < 60; trial++) {
            int rank = 1 + random.nextInt(4); // per sample
            int[] x = randomShape(rank, 5);
            List<Integer> axes = new ArrayList<>();
            for (int d = 1; d <= rank; d++) {
                axes.add(d);
            }
            Collections.shuffle(axes, random);
            int[] dims = new int[1 + random.nextInt(rank)];
            boolean[] reduced = new boolean[rank];
            for (int i = 0; i < dims.length; i++) {
                dims[i] = axes.get(i);
                reduced[dims[i] - 1] = true;
            }
            boolean keepdim = random.nextBoolean();
            List<Integer> outList = new ArrayList<>();
            int[] kept = x.clone();
            int count = 1;
            for (int d = 0; d < rank; d++) {
                if (reduced[d]) {
                    kept[d] = 1;
                    count *= x[d];
                    if (keepdim) {
                        outList.add(1);
                    }
                } else {
                    outList.add(x[d]);
                }
            }
            int[] out = new int[outList.size()];
            for (int i = 0; i < out.length; i++) {
                out[i] = outList.get(i);
            }
            Model m = model(TestHpk.builder(x).node("Mean", "m", list("x"), obj(), obj("dims", ints(dims),
                    "keepdim", keepdim)).output("m", out));
            assertArrayEquals(out, m.outputShape());
            float[] in = randn(2 * TestSupport.numel(x));
            int[] full = new int[rank + 1];
            int[] keptFull = new int[rank + 1];
            full[0] = 2;
            keptFull[0] = 2;
            for (int d = 0; d < rank; d++) {
                full[d + 1] = x[d];
                keptFull[d + 1] = kept[d];
            }
            double[] sums = new double[2 * TestSupport.numel(kept)];
            for (int i = 0; i < in.length; i++) {
                int[] index = unravel(i, full);
                for (int d = 0; d < rank; d++) {
                    if (reduced[d]) {
                        index[d + 1] = 0;
                    }
                }
                sums[ravel(index, keptFull)] += in[i];
            }
            float[] expected = new float[sums.length];
            for (int i = 0; i < expected.length; i++) {
                expected[i] = (float) (sums[i] / count);
            }
            // the kept layout and the squeezed one are the same row-major data
            assertClose("mean " + Arrays.toString(x) + " dims " + Arrays.toString(dims), expected, m.run(in, 2));
        }
    }

    @Test
    public void transposeIsPermute() {
        for (int trial = 0; trial < 60; trial++) {
            int rank = 1 + random.nextInt(5); // per sample
            int[] x = randomShape(rank, 4);
            List<Integer> axes = new ArrayList<>();
            for (int d = 1; d <= rank; d++) {
                axes.add(d);
            }
            Collections.shuffle(axes, random);
            int[] perm = new int[rank + 1];
            int[] out = new int[rank];
            for (int d = 0; d < rank; d++) {
                perm[d + 1] = axes.get(d);
                out[d] = x[axes.get(d) - 1];
            }
            Model m = model(TestHpk.builder(x).node("Transpose", "t", list("x"), obj(), obj("perm", ints(perm)))
                    .output("t", out));
            float[] in = randn(2 * TestSupport.numel(x));
            float[] y = m.run(in, 2);
            int[] full = new int[rank + 1];
            int[] outFull = new int[rank + 1];
            full[0] = 2;
            outFull[0] = 2;
            for (int d = 0; d < rank; d++) {
                full[d + 1] = x[d];
                outFull[d + 1] = out[d];
            }
            float[] expected = new float[y.length];
            for (int i = 0; i < y.length; i++) {
                int[] o = unravel(i, outFull); // y[o] = x[i'] with i'[perm[d]] = o[d]
                int[] source = new int[rank + 1];
                for (int d = 0; d <= rank; d++) {
                    source[perm[d]] = o[d];
                }
                expected[i] = in[ravel(source, full)];
            }
            assertArrayEquals("perm " + Arrays.toString(perm), expected, y, 0f);
        }
    }

    @Test
    public void channelShuffleRoundTrip() {
        // shufflenet's channel_shuffle with 2 groups: view [g, C/g, H, W], transpose(1, 2), view back
        int c = 6;
        Model m = model(TestHpk.builder(c, 2, 3)
                .node("Reshape", "v", list("x"), obj(), obj("shape", ints(2, c / 2, 2, 3)))
                .node("Transpose", "t", list("v"), obj(), obj("perm", ints(0, 2, 1, 3, 4)))
                .node("Reshape", "s", list("t"), obj(), obj("shape", ints(c, 2, 3))).output("s", c, 2, 3));
        float[] in = new float[c * 6];
        for (int i = 0; i < in.length; i++) {
            in[i] = i / 6; // the channel index
        }
        float[] y = m.run(in, 1);
        int[] order = {0, 3, 1, 4, 2, 5};
        for (int ch = 0; ch < c; ch++) {
            assertEquals("channel " + ch, order[ch], y[ch * 6], 0f);
        }
    }

    @Test
    public void sliceIsNarrow() {
        for (int trial = 0; trial < 60; trial++) {
            int rank = 1 + random.nextInt(4);
            int[] x = randomShape(rank, 5);
            int axis = 1 + random.nextInt(rank);
            int dim = x[axis - 1];
            int start = random.nextInt(dim);
            int end = start + 1 + random.nextInt(dim - start);
            int[] out = x.clone();
            out[axis - 1] = end - start;
            Model m = model(TestHpk.builder(x).node("Slice", "s", list("x"), obj(), obj("axis", axis, "start", start,
                    "end", end)).output("s", out));
            float[] in = randn(2 * TestSupport.numel(x));
            float[] y = m.run(in, 2);
            int[] full = new int[rank + 1];
            int[] outFull = new int[rank + 1];
            full[0] = 2;
            outFull[0] = 2;
            for (int d = 0; d < rank; d++) {
                full[d + 1] = x[d];
                outFull[d + 1] = out[d];
            }
            float[] expected = new float[y.length];
            for (int i = 0; i < y.length; i++) {
                int[] o = unravel(i, outFull);
                o[axis] += start;
                expected[i] = in[ravel(o, full)];
            }
            assertArrayEquals("slice axis " + axis + " [" + start + ", " + end + ")", expected, y, 0f);
        }
    }

    @Test
    public void adaptivePoolsMatchTheirWindows() {
        for (int trial = 0; trial < 60; trial++) {
            int c = 1 + random.nextInt(3);
            int h = 1 + random.nextInt(9);
            int w = 1 + random.nextInt(9);
            int oh = 1 + random.nextInt(9); // larger than the input too (VGG's 7x7 from 2x2)
            int ow = 1 + random.nextInt(9);
            boolean max = random.nextBoolean();
            String op = max ? "AdaptiveMaxPool2d" : "AdaptiveAvgPool2d";
            Model m = model(TestHpk.builder(c, h, w).node(op, "p", list("x"), obj(), obj("output", ints(oh, ow)))
                    .output("p", c, oh, ow));
            float[] in = randn(2 * c * h * w);
            float[] expected = new float[2 * c * oh * ow];
            for (int nc = 0; nc < 2 * c; nc++) {
                for (int i = 0; i < oh; i++) {
                    int y0 = (int) Math.floor((double) i * h / oh);
                    int y1 = (int) Math.ceil((double) (i + 1) * h / oh);
                    for (int j = 0; j < ow; j++) {
                        int x0 = (int) Math.floor((double) j * w / ow);
                        int x1 = (int) Math.ceil((double) (j + 1) * w / ow);
                        double acc = max ? Double.NEGATIVE_INFINITY : 0;
                        for (int iy = y0; iy < y1; iy++) {
                            for (int ix = x0; ix < x1; ix++) {
                                float v = in[(nc * h + iy) * w + ix];
                                acc = max ? Math.max(acc, v) : acc + v;
                            }
                        }
                        expected[(nc * oh + i) * ow + j] = (float) (max ? acc : acc / ((y1 - y0) * (x1 - x0)));
                    }
                }
            }
            assertClose(op + " " + h + "x" + w + " -> " + oh + "x" + ow, expected, m.run(in, 2));
        }
    }

    /** torch's pooling_output_shape for one axis, ceil_mode=True. */
    private static int ceilOut(int in, int k, int s, int p, int d) {
        int out = Math.floorDiv(in + 2 * p - d * (k - 1) - 1 + s - 1, s) + 1;
        if ((out - 1) * s >= in + p) {
            out--;
        }
        return out;
    }

    @Test
    public void ceilModeOutputSizesAreTorchs() {
        // (H, kernel, stride, padding) -> output size, from torch.nn.MaxPool2d(ceil_mode=True)
        int[][] cases = {{7, 3, 2, 0, 3}, {6, 3, 2, 0, 3}, {5, 2, 2, 1, 3}, {4, 2, 3, 0, 2}, {3, 3, 2, 0, 1},
            {31, 3, 2, 0, 15}, {15, 3, 2, 0, 7}, {8, 3, 3, 1, 3}};
        for (int[] c : cases) {
            Map<String, Object> attrs = obj("kernel", ints(c[1], c[1]), "stride", ints(c[2], c[2]), "padding",
                    ints(c[3], c[3]), "dilation", ints(1, 1), "ceil_mode", true);
            Model m = model(TestHpk.builder(1, c[0], c[0]).node("MaxPool2d", "p", list("x"), obj(), attrs)
                    .output("p", 1, c[4], c[4]));
            assertArrayEquals(Arrays.toString(c), new int[] {1, c[4], c[4]}, m.outputShape());
            assertEquals(Arrays.toString(c), c[4], ceilOut(c[0], c[1], c[2], c[3], 1));
        }
    }

    @Test
    public void ceilModePoolsClipTheirWindows() {
        int tested = 0;
        while (tested < 80) {
            int c = 1 + random.nextInt(3);
            int h = 1 + random.nextInt(9);
            int w = 1 + random.nextInt(9);
            int[] k = {1 + random.nextInt(4), 1 + random.nextInt(4)};
            int[] s = {1 + random.nextInt(3), 1 + random.nextInt(3)};
            int[] p = {random.nextInt(k[0] / 2 + 1), random.nextInt(k[1] / 2 + 1)};
            boolean max = random.nextBoolean();
            int[] d = max ? new int[] {1 + random.nextInt(2), 1 + random.nextInt(2)} : new int[] {1, 1};
            boolean includePad = random.nextBoolean();
            int ho = ceilOut(h, k[0], s[0], p[0], d[0]);
            int wo = ceilOut(w, k[1], s[1], p[1], d[1]);
            if (h + 2 * p[0] < d[0] * (k[0] - 1) + 1 || w + 2 * p[1] < d[1] * (k[1] - 1) + 1) {
                continue; // the dilated kernel must fit the padded input (docs/FORMAT.md §5), ceil mode too
            }
            Map<String, Object> attrs = obj("kernel", ints(k[0], k[1]), "stride", ints(s[0], s[1]),
                    "padding", ints(p[0], p[1]), "ceil_mode", true);
            attrs.put(max ? "dilation" : "count_include_pad", max ? ints(d[0], d[1]) : (Object) includePad);
            Model m = model(TestHpk.builder(c, h, w).node(max ? "MaxPool2d" : "AvgPool2d", "pool", list("x"), obj(),
                    attrs).output("pool", c, ho, wo));
            float[] x = randn(2 * c * h * w);
            float[] expected = new float[2 * c * ho * wo];
            for (int nc = 0; nc < 2 * c; nc++) {
                for (int oy = 0; oy < ho; oy++) {
                    for (int ox = 0; ox < wo; ox++) {
                        // torch's avg_pool2d: the divisor window is clipped to the padded input
                        int hs = oy * s[0] - p[0];
                        int ws = ox * s[1] - p[1];
                        int poolSize = (Math.min(hs + k[0], h + p[0]) - hs) * (Math.min(ws + k[1], w + p[1]) - ws);
                        double acc = max ? Double.NEGATIVE_INFINITY : 0;
                        int count = 0;
                        for (int ky = 0; ky < k[0]; ky++) {
                            for (int kx = 0; kx < k[1]; kx++) {
                                int iy = hs + ky * d[0];
                                int ix = ws + kx * d[1];
                                if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
                                    float v = x[(nc * h + iy) * w + ix];
                                    acc = max ? Math.max(acc, v) : acc + v;
                                    count++;
                                }
                            }
                        }
                        // an average window always has an input tap (a dilated max window may not: -inf)
                        assertEquals("avg window with an input tap", true, max || count > 0);
                        expected[(nc * ho + oy) * wo + ox] = (float) (max ? acc
                                : acc / (includePad ? poolSize : count));
                    }
                }
            }
            assertClose((max ? "max" : "avg") + " ceil pool " + tested, expected, m.run(x, 2));
            tested++;
        }
    }
}
