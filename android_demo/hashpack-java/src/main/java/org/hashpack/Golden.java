package org.hashpack;

/**
 * The golden self-check section of a file (docs/FORMAT.md §3): the outputs PyTorch computed at pack
 * time, for inputs either stored in the file (version 1 and 2) or regenerated from a seed by the
 * {@code hp32-uniform} generator (version 2), which costs no bytes however large the input is.
 */
public final class Golden {
    /** The only generator of version 2. */
    public static final String GENERATOR = "hp32-uniform";
    /** Most samples a generated section may declare. */
    public static final long MAX_COUNT = 1024;
    /** Most values (count × per-sample input size) a reader regenerates: 64 MiB of float32. */
    public static final long MAX_VALUES = 1L << 24;

    final String inputsTensor; // null when generated
    final String outputsTensor;
    final long seed;
    final int count;

    Golden(String inputsTensor, String outputsTensor, long seed, int count) {
        this.inputsTensor = inputsTensor;
        this.outputsTensor = outputsTensor;
        this.seed = seed;
        this.count = count;
    }

    /** True if the inputs are regenerated from a seed rather than stored. */
    public boolean generated() {
        return inputsTensor == null;
    }

    /**
     * The {@code hp32-uniform} inputs: element {@code j} of the flat batch is
     * {@code float32(int(h(j) >> 8) - 2^23) * 2^-23} with {@code h} = hp32 for {@code seed}, hash
     * function 0. The integer is below 2^24 in magnitude (exact as a float) and the scale is a power
     * of two, so every runtime gets the same bits.
     *
     * @throws IllegalArgumentException if count or the total exceeds the format's limits
     */
    public static float[] generate(long seed, int count, long sampleSize) {
        if (count < 1 || count > MAX_COUNT || sampleSize < 0 || count * sampleSize > MAX_VALUES) {
            throw new IllegalArgumentException(count + " generated golden samples of " + sampleSize
                    + " values exceed the limits (" + MAX_COUNT + " samples, " + MAX_VALUES + " values)");
        }
        Hp32 hash = new Hp32(seed, 0);
        float[] out = new float[(int) (count * sampleSize)];
        for (int j = 0; j < out.length; j++) {
            int high = (int) (hash.hash(j) >>> 8);
            out[j] = (float) (high - (1 << 23)) * 0x1p-23f;
        }
        return out;
    }
}
