package org.hashpack;

/**
 * The hp32 hash of docs/FORMAT.md §1: for flat index {@code i} of a virtual tensor, a bucket in
 * {@code [0, K)} and a sign.
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
    /** Largest number of elements of one virtual tensor: flat indices are below 2^31 - 1 (§6). */
    public static final long MAX_VIRTUAL_SIZE = (1L << 31) - 1;

    private Hp32() {}

    /** The bijective finaliser on u32 values. */
    public static long mix32(long x) {
        x &= MASK;
        x ^= x >>> 16;
        x = (x * MIX) & MASK;
        x ^= x >>> 16;
        x = (x * MIX) & MASK;
        x ^= x >>> 16;
        return x;
    }

    /** {@code key(seed, f) = mix32(seed ^ (GAMMA * (f + 1)))}. */
    public static long key(long seed, int function) {
        checkSeed(seed, function);
        // GAMMA < 2^32 and f + 1 <= 2^16: the product is below 2^48.
        return mix32(seed ^ ((GAMMA * (function + 1L)) & MASK));
    }

    /** {@code multiplier(seed, f)}: odd and below 2^31. */
    public static long multiplier(long seed, int function) {
        return (mix32(key(seed, function) ^ SALT) & 0x7FFFFFFFL) | 1L;
    }

    /** {@code h(i) = mix32((i ^ key) * multiplier)} for a precomputed key and multiplier. */
    public static long hash(long index, long key, long multiplier) {
        return mix32(((index ^ key) & MASK) * multiplier);
    }

    /** {@code h(i)} from the seed (slow path: derives key and multiplier every call). */
    public static long hash(long index, long seed, int function, boolean unused) {
        return hash(index, key(seed, function), multiplier(seed, function));
    }

    /** {@code h mod K}. */
    public static long bucket(long h, long numBuckets) {
        return h % numBuckets;
    }

    /** +1 if bit 31 of h is clear, else -1. */
    public static int sign(long h) {
        return (h & SIGN_BIT) == 0 ? 1 : -1;
    }

    private static void checkSeed(long seed, int function) {
        if (seed < 0 || seed > MASK) {
            throw new IllegalArgumentException("seed " + seed + " is not a uint32");
        }
        if (function < 0 || function >= (1 << 16)) {
            throw new IllegalArgumentException("hash function number " + function + " out of range");
        }
    }
}
