package org.hashpack;

import java.math.BigInteger;
import java.util.Arrays;
import java.util.List;

/**
 * {@code fresh} (FreshNets, Chen et al.): a convolution weight {@code [O, I, kh, kw]} stored as
 * hashed 2-D DCT coefficients, one bucket pool per frequency band (docs/FORMAT.md §4).
 *
 * <p>Coefficient {@code i = ((o·I + c)·kh + u)·kw + v} lies in band {@code b = min(u + v, nb - 1)};
 * band {@code b} owns the buckets {@code [off_b, off_b + K_b)} of the space, and the coefficient is
 * {@code sign(H)·space[off_b + H mod K_b]} with {@code H = h_0(i)}, or a zero when {@code K_b = 0}.
 * The coefficients are exact (bit-identical to every other decoder). Each filter is then the inverse
 * orthonormal DCT of its coefficients, one float32 product with the constant basis {@code M}, whose
 * summation order the format leaves free.
 */
final class FreshScheme implements Scheme {
    /** kh, kw at most 32: the basis is (kh·kw)^2 floats, at most 4 MiB. */
    static final int MAX_KERNEL = 32;
    /**
     * T_n for n = 1 … 32 (11,440 cosines, computed once): a file's params then cost no cosines, so a
     * file of many small fresh params decodes in time proportional to its multiply-adds.
     */
    private static final double[][] DCT = new double[MAX_KERNEL + 1][];

    static {
        for (int n = 1; n <= MAX_KERNEL; n++) {
            DCT[n] = dctMatrix(n);
        }
    }

    /** One fetch and a kh·kw inverse DCT per weight (§6). */
    @Override
    public long decodeWorkPerWeight(Param param) {
        return 1 + (long) param.shape()[2] * param.shape()[3];
    }

    @Override
    public String name() {
        return "fresh";
    }

    @Override
    public long validate(Param param, Validator v) throws HpkFormatException {
        String where = SchemeFields.where(param);
        int[] shape = param.shape();
        if (shape.length != 4) {
            throw v.fail(where + ": fresh needs a 4-D [out, in, kh, kw] shape, got " + Arrays.toString(shape));
        }
        int kh = shape[2];
        int kw = shape[3];
        if (kh > MAX_KERNEL || kw > MAX_KERNEL) {
            throw v.fail(where + ": fresh kernel " + kh + "×" + kw + " exceeds the " + MAX_KERNEL + "×" + MAX_KERNEL
                    + " limit");
        }
        Space space = SchemeFields.space(v, param, "space");
        SchemeFields.seed(v, param);
        List<?> bands = v.list(param.spec(), "bands", where);
        if (bands.size() < 1 || bands.size() > kh + kw - 1) {
            throw v.fail(where + ": " + bands.size() + " bands, a " + kh + "×" + kw + " kernel allows 1 to "
                    + (kh + kw - 1));
        }
        long total = 0; // at most 63 bands of at most 2^30 buckets: no overflow
        for (Object size : bands) {
            if (!(size instanceof BigInteger) || ((BigInteger) size).signum() < 0
                    || ((BigInteger) size).compareTo(BigInteger.valueOf(Hp32.MAX_BUCKETS)) > 0) {
                throw v.fail(where + ": band bucket count " + Json.repr(size) + " is not an integer in [0, 2^30]");
            }
            total += ((BigInteger) size).longValue();
        }
        if (total != space.size()) {
            throw v.fail(where + ": band bucket counts sum to " + total + ", space '" + space.name() + "' has "
                    + space.size());
        }
        return space.size();
    }

    @Override
    public float[] decode(Param param, HpkFile file) {
        int[] shape = param.shape();
        int taps = shape[2] * shape[3];
        int filters = shape[0] * shape[1];
        float[] basis = idctBasis(shape[2], shape[3]);
        Coefficients coefficients = new Coefficients(param, file);
        float[] out = new float[filters * taps];
        float[] row = new float[taps];
        float[] acc = new float[taps];
        for (int f = 0; f < filters; f++) {
            coefficients.filter(f, row, 0);
            Arrays.fill(acc, 0f);
            // acc = row @ M, in float32, summing over the coefficients in order
            for (int j = 0; j < taps; j++) {
                float c = row[j];
                int base = j * taps;
                for (int x = 0; x < taps; x++) {
                    acc[x] += c * basis[base + x];
                }
            }
            System.arraycopy(acc, 0, out, f * taps, taps);
        }
        return out;
    }

    /** The virtual coefficient tensor C (flat, row-major), bit-exact: what the inverse DCT is applied to. */
    static float[] coefficients(Param param, HpkFile file) {
        int[] shape = param.shape();
        int taps = shape[2] * shape[3];
        int filters = shape[0] * shape[1];
        Coefficients coefficients = new Coefficients(param, file);
        float[] out = new float[filters * taps];
        for (int f = 0; f < filters; f++) {
            coefficients.filter(f, out, f * taps);
        }
        return out;
    }

    /** Step 2 of the decoding: per filter position, its band's bucket offset and count. */
    private static final class Coefficients {
        final int taps;
        final Hp32 hash;
        final float[] values;
        final long[] offset;
        final long[] size;

        Coefficients(Param param, HpkFile file) {
            int[] shape = param.shape();
            int kh = shape[2];
            int kw = shape[3];
            taps = kh * kw;
            hash = new Hp32(SchemeFields.checkedLong(param, "seed"), 0);
            values = file.spaceValues((String) param.spec().get("space"));
            List<?> bands = (List<?>) param.spec().get("bands");
            int nb = bands.size();
            long[] bandOffset = new long[nb];
            long[] bandSize = new long[nb];
            long running = 0;
            for (int b = 0; b < nb; b++) {
                bandSize[b] = ((BigInteger) bands.get(b)).longValue();
                bandOffset[b] = running;
                running += bandSize[b];
            }
            offset = new long[taps];
            size = new long[taps];
            for (int u = 0; u < kh; u++) {
                for (int v = 0; v < kw; v++) {
                    int b = Math.min(u + v, nb - 1);
                    offset[u * kw + v] = bandOffset[b];
                    size[u * kw + v] = bandSize[b];
                }
            }
        }

        /** Writes the taps coefficients of filter {@code f} (flat index {@code f·taps + p}) to {@code out[at...]}. */
        void filter(int f, float[] out, int at) {
            long first = (long) f * taps;
            for (int p = 0; p < taps; p++) {
                long h = hash.hash(first + p);
                int sign = (int) (h & Hp32.SIGN_BIT);
                // A band without buckets gives a zero; its sign bit is flipped like any other value's
                // (so -0.0 where H has bit 31 set), as the numpy runtime does: bit-identical coefficients.
                float magnitude = size[p] == 0 ? 0f : values[(int) (offset[p] + h % size[p])];
                out[at + p] = SchemeFields.flip(magnitude, sign);
            }
        }
    }

    /**
     * The basis M (float32, {@code [kh·kw, kh·kw]} row-major): {@code M[u·kw + v, x·kw + y] =
     * T_kh[u, x]·T_kw[v, y]}, computed in float64 and rounded to float32 once.
     */
    static float[] idctBasis(int kh, int kw) {
        double[] th = kh <= MAX_KERNEL ? DCT[kh] : dctMatrix(kh);
        double[] tw = kw <= MAX_KERNEL ? DCT[kw] : dctMatrix(kw);
        int taps = kh * kw;
        float[] m = new float[taps * taps];
        for (int u = 0; u < kh; u++) {
            for (int v = 0; v < kw; v++) {
                int row = (u * kw + v) * taps;
                for (int x = 0; x < kh; x++) {
                    for (int y = 0; y < kw; y++) {
                        m[row + x * kw + y] = (float) (th[u * kh + x] * tw[v * kw + y]);
                    }
                }
            }
        }
        return m;
    }

    /**
     * The orthonormal DCT-II matrix T (float64, {@code n×n} row-major): {@code T[u, x] = a_u·cos(π(2x +
     * 1)u / (2n))}, {@code a_0 = sqrt(1/n)}, {@code a_u = sqrt(2/n)}. The argument is evaluated in the
     * numpy runtime's order; {@link StrictMath#cos} (fdlibm) gives the same bits on every JVM.
     */
    static double[] dctMatrix(int n) {
        double[] t = new double[n * n];
        for (int u = 0; u < n; u++) {
            double scale = u == 0 ? Math.sqrt(1.0 / n) : Math.sqrt(2.0 / n);
            for (int x = 0; x < n; x++) {
                t[u * n + x] = scale * StrictMath.cos(Math.PI * (2.0 * x + 1.0) * u / (2.0 * n));
            }
        }
        return t;
    }
}
