package org.hashpack;

/**
 * The hp32 hash of docs/FORMAT.md §1: for flat index {@code i} of a virtual tensor, a bucket in
 * {@code [0, K)} and a sign. An instance is one hash function {@code f} of one tensor seed.
 *
 * <p>Unsigned 32-bit values are held in a {@code long} and masked with {@link #MASK} after every
 * multiplication. Every multiplier is below 2^31 and every operand below 2^32, so no product
 * reaches 2^63: there is no signed overflow anywhere.
 */
public final class Hp32 {
    public static final long MASK = 0xFFFFFFFFL;
    public static final long MIX = 0x045D9F3BL;
    public static final long GAMMA = 0x9E3779B9L;
    public static final long SALT = 0x68E31DA4L;
    public static final long SIGN_BIT = 0x80000000L;
    /** Largest bucket count K (§6). */
    public static final long MAX_BUCKETS = 1L << 30;
    /** Largest number of elements of one virtual tensor: flat indices stay below 2^31 (§6). */
    public static final long MAX_VIRTUAL_SIZE = (1L << 31) - 1;

    private final long key;
    private final long multiplier;

    /**
     * Hash function number {@code function} of the tensor with seed {@code seed}.
     *
     * @throws IllegalArgumentException if seed is not a u32 or function is not in [0, 2^16)
     */
    public Hp32(long seed, int function) {
        if (seed < 0 || seed > MASK) {
            throw new IllegalArgumentException("seed " + seed + " is not a uint32");
        }
        if (function < 0 || function >= (1 << 16)) {
            throw new IllegalArgumentException("hash function number " + function + " out of range");
        }
        // GAMMA < 2^32 and f + 1 <= 2^16: the product is below 2^48.
        this.key = mix32(seed ^ ((GAMMA * (function + 1L)) & MASK));
        this.multiplier = (mix32(key ^ SALT) & 0x7FFFFFFFL) | 1L;
    }

    /** The bijective finaliser on u32 values (the argument is masked to 32 bits first). */
    public static long mix32(long x) {
        x &= MASK;
        x ^= x >>> 16;
        x = (x * MIX) & MASK;
        x ^= x >>> 16;
        x = (x * MIX) & MASK;
        x ^= x >>> 16;
        return x;
    }

    /** {@code key(seed, f)}, XORed into every index. */
    public long key() {
        return key;
    }

    /** {@code multiplier(seed, f)}: odd and below 2^31. */
    public long multiplier() {
        return multiplier;
    }

    /** {@code h(i) = mix32((i ^ key) * multiplier)}, for {@code 0 <= i < 2^32}. */
    public long hash(long index) {
        return mix32(((index ^ key) & MASK) * multiplier);
    }

    /** {@code h(i) mod K}. */
    public long bucket(long index, long numBuckets) {
        return hash(index) % numBuckets;
    }

    /** {@code sign(i)}: +1 if bit 31 of {@code h(i)} is clear, else -1. */
    public int sign(long index) {
        return (hash(index) & SIGN_BIT) == 0 ? 1 : -1;
    }

    /**
     * The virtual tensor {@code out[i] = sign(i) * values[bucket(i)]} for {@code 0 <= i < out.length},
     * with {@code K = values.length}. The sign is applied by flipping the float's sign bit, which is
     * bit-identical to multiplying by -1.0f (§1 allows either).
     */
    public void gatherSigned(float[] values, float[] out) {
        gatherSigned(values, out, out.length);
    }

    /**
     * {@link #gatherSigned(float[], float[])} for the first {@code count} elements of {@code out} only
     * (a reused buffer larger than the tensor).
     */
    public void gatherSigned(float[] values, float[] out, int count) {
        int numBuckets = values.length;
        if (numBuckets < 1 || numBuckets > MAX_BUCKETS) {
            throw new IllegalArgumentException("bucket count " + numBuckets + " outside [1, 2^30]");
        }
        if (count < 0 || count > out.length) {
            throw new IllegalArgumentException("count " + count + " outside [0, " + out.length + "]");
        }
        // The hot path. Java's int arithmetic wraps modulo 2^32, so the u32 steps of mix32 are exact on
        // ints (>>> is the logical shift); only the remainder needs the unsigned value, as a long.
        final int k = (int) key;
        final int m = (int) multiplier;
        final int mix = (int) MIX;
        final long divisor = numBuckets;
        final int shift = divisionShift(divisor);
        final long magic = divisionMagic(divisor, shift);
        for (int i = 0; i < count; i++) {
            int x = (i ^ k) * m;
            x ^= x >>> 16;
            x *= mix;
            x ^= x >>> 16;
            x *= mix;
            x ^= x >>> 16;
            long u = x & MASK;
            int bucket = (int) (u - (((u * magic) >>> 32) + u >>> shift) * divisor); // u mod K, see remainder
            out[i] = Float.intBitsToFloat(Float.floatToRawIntBits(values[bucket]) ^ (x & 0x80000000));
        }
    }

    /**
     * {@code sign(i) * values[bucket(i)]} for any run of flat indices: what decodes only the rows of a
     * hashed embedding table a batch looks up (indices {@code id·D .. id·D + D - 1}), bit-identical
     * to the same elements of {@link #gatherSigned}.
     */
    public static final class Gather {
        private final int[] bits;
        private final long key;
        private final long multiplier;
        private final double inverse;

        /** Hash function {@code hash} over the buckets {@code values} (their bits are copied once). */
        public Gather(Hp32 hash, float[] values) {
            int numBuckets = values.length;
            if (numBuckets < 1 || numBuckets > MAX_BUCKETS) {
                throw new IllegalArgumentException("bucket count " + numBuckets + " outside [1, 2^30]");
            }
            bits = new int[numBuckets];
            for (int j = 0; j < numBuckets; j++) {
                bits[j] = Float.floatToRawIntBits(values[j]);
            }
            key = hash.key;
            multiplier = hash.multiplier;
            inverse = 1.0 / numBuckets;
        }

        /** {@code out[offset + t] = sign(start + t) * values[bucket(start + t)]} for {@code t < count}. */
        public void fill(long start, float[] out, int offset, int count) {
            final long k = key;
            final long m = multiplier;
            final long divisor = bits.length;
            for (int t = 0; t < count; t++) {
                long x = (((start + t) ^ k) & MASK) * m & MASK;
                x ^= x >>> 16;
                x = (x * MIX) & MASK;
                x ^= x >>> 16;
                x = (x * MIX) & MASK;
                x ^= x >>> 16;
                int bucket = (int) mod(x, divisor, inverse);
                out[offset + t] = Float.intBitsToFloat(bits[bucket] ^ (int) (x & SIGN_BIT));
            }
        }
    }

    /**
     * {@code x mod k} for {@code 0 <= x < 2^32} and {@code 1 <= k <= 2^30}, given {@code inverse =
     * 1.0 / k}: a floating-point quotient estimate and one correction step, about twice as fast as a
     * 64-bit division. The estimate {@code x * inverse} carries a relative error below 2^-51, so it
     * is off from {@code x / k} by less than 2^32 * 2^-51 = 2^-19 and its floor is the true quotient
     * or one of its neighbours; the remainder is then exact after at most one add or subtract of k.
     */
    /**
     * {@code x mod k} for {@code 0 <= x < 2^32} and {@code 1 <= k <= 2^30} with integer operations only
     * (Granlund and Montgomery 1994, Theorem 4.2, N = 32): with {@code l = ceil(log2 k)} and
     * {@code magic = floor(2^32 (2^l - k) / k) + 1} (at most 2^32), the quotient is
     * {@code (((x * magic) >> 32) + x) >> l}, exact for every x below 2^32. The product stays below
     * 2^64 (read unsigned, which {@code >>>} does) and the sum below 2^33: no overflow.
     */
    static long remainder(long x, long k, long magic, int shift) {
        return x - ((((x * magic) >>> 32) + x) >>> shift) * k;
    }

    /** {@code l = ceil(log2 k)} of {@link #remainder}. */
    static int divisionShift(long k) {
        return 64 - Long.numberOfLeadingZeros(k - 1);
    }

    /** {@code magic} of {@link #remainder}. */
    static long divisionMagic(long k, int shift) {
        return ((1L << 32) * ((1L << shift) - k)) / k + 1; // (2^l - k) < k <= 2^30: below 2^62
    }

    static long mod(long x, long k, double inverse) {
        long r = x - (long) (x * inverse) * k;
        if (r < 0) {
            r += k;
        } else if (r >= k) {
            r -= k;
        }
        return r;
    }
}
