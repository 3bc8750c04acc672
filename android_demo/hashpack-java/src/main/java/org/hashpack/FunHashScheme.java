package org.hashpack;

import java.math.BigInteger;
import java.util.HashSet;
import java.util.List;

/**
 * {@code funhash} (FunHashNN, Shi, Feng, Zhu 2016): each virtual weight is {@code g(z)}, where
 * {@code z} holds {@code D = U·hops} signed values fetched from one or two bucket spaces by the hash
 * functions {@code f = 0 … U-1} (and, with two hops, {@code f = U … 2U-1} applied to the first
 * round's bucket indices); {@code g} is a per-layer MLP {@code D → H → 1} with ReLU whose values are a
 * space of their own, or the identity when {@code H = 0} (docs/FORMAT.md §4).
 *
 * <p>The fetched values {@code z} are exact (bit-identical to every other decoder); g's float32
 * dot products may sum in any order, as the format allows.
 */
final class FunHashScheme implements Scheme {
    static final int MAX_HASHES = 16;
    static final int MAX_HIDDEN = 256;
    /**
     * Hop 2 reads a table of the {@code K_u} hop-2 buckets of hash u when {@code K_u} is at most this
     * (4 bytes a bucket, 16 MiB at most over the 16 hashes) and at most the param's element count
     * (so building it never costs more hashing than it saves); otherwise each fetched bucket index is
     * hashed on the fly. Either way a param costs O(numel·U) hashes and bounded memory, whatever the
     * space sizes.
     */
    static final int HOP_TABLE_LIMIT = 1 << 18;
    private static final int CHUNK = 1 << 12;

    @Override
    public String name() {
        return "funhash";
    }

    /** Values of g's space: W1 [H, D], b1 [H], w2 [H], b2 [1] (0 for the identity). */
    /** D fetches and g's D·H + 2H + 1 multiply-adds (§6). */
    @Override
    public long decodeWorkPerWeight(Param param) {
        long inputs = SchemeFields.checkedLong(param, "hashes") * SchemeFields.checkedLong(param, "hops");
        return inputs + gSize(inputs, SchemeFields.checkedLong(param, "hidden"));
    }

    static long gSize(long inputs, long hidden) {
        return hidden == 0 ? 0 : inputs * hidden + 2 * hidden + 1;
    }

    @Override
    public long validate(Param param, Validator v) throws HpkFormatException {
        String where = SchemeFields.where(param);
        List<?> names = v.list(param.spec(), "spaces", where);
        boolean wellFormed = names.size() >= 1 && names.size() <= 2;
        for (Object name : names) {
            wellFormed &= name instanceof String;
        }
        if (!wellFormed || new HashSet<>(names).size() != names.size()) {
            throw v.fail(where + ": spaces must list one or two distinct space names, got " + Json.repr(names));
        }
        long stored = 0;
        for (Object name : names) {
            Space space = v.space((String) name);
            if (space == null) {
                throw v.fail(where + ": unknown space '" + name + "'");
            }
            stored += space.size();
        }
        SchemeFields.seed(v, param);
        int hashes = SchemeFields.intInRange(v, param, "hashes", 1, MAX_HASHES);
        BigInteger hopsValue = v.integer(param.spec(), "hops", where);
        if (!hopsValue.equals(BigInteger.ONE) && !hopsValue.equals(BigInteger.valueOf(2))) {
            throw v.fail(where + ": hops = " + hopsValue + " must be 1 or 2");
        }
        int hops = hopsValue.intValue();
        if (names.size() > hashes) {
            throw v.fail(where + ": " + names.size() + " spaces but only " + hashes
                    + " hash(es): a space would be unused");
        }
        int hidden = SchemeFields.intInRange(v, param, "hidden", 0, MAX_HIDDEN);
        int inputs = hashes * hops;
        if (hidden == 0) {
            if (inputs != 1) {
                throw v.fail(where + ": hidden = 0 (g = identity) needs hashes = 1 and hops = 1");
            }
            if (param.spec().containsKey("g")) {
                throw v.fail(where + ": hidden = 0 (g = identity) must not name a g space");
            }
        } else {
            String g = v.string(param.spec(), "g", where);
            Space gSpace = v.space(g);
            if (gSpace == null || names.contains(g)) {
                throw v.fail(where + ": g space '" + g + "' is unknown or is also a bucket space");
            }
            if (gSpace.size() != gSize(inputs, hidden)) {
                throw v.fail(where + ": g space '" + g + "' has " + gSpace.size() + " values, a " + inputs + "→"
                        + hidden + "→1 MLP needs " + gSize(inputs, hidden));
            }
        }
        return stored;
    }

    @Override
    public float[] decode(Param param, HpkFile file) {
        Fetcher fetcher = new Fetcher(param, file, HOP_TABLE_LIMIT);
        int numel = (int) param.numel();
        int inputs = fetcher.inputs;
        int hidden = (int) SchemeFields.checkedLong(param, "hidden");
        float[] out = new float[numel];
        float[] z = new float[Math.min(numel, CHUNK) * inputs];
        float[] g = hidden == 0 ? null : file.spaceValues((String) param.spec().get("g"));
        int w1 = 0;
        int b1 = inputs * hidden;
        int w2 = b1 + hidden;
        int b2 = w2 + hidden;
        for (int start = 0; start < numel; start += CHUNK) {
            int count = Math.min(CHUNK, numel - start);
            fetcher.fetch(start, count, z);
            if (hidden == 0) {
                System.arraycopy(z, 0, out, start, count); // D = 1: z[k] is weight(start + k)
                continue;
            }
            for (int k = 0; k < count; k++) {
                int zk = k * inputs;
                float y = 0f;
                for (int h = 0; h < hidden; h++) {
                    int row = w1 + h * inputs;
                    float s = 0f;
                    for (int j = 0; j < inputs; j++) {
                        s += g[row + j] * z[zk + j];
                    }
                    s += g[b1 + h];
                    y += g[w2 + h] * Math.max(s, 0f); // ReLU (NaN stays NaN, as in numpy)
                }
                out[start + k] = y + g[b2];
            }
        }
        return out;
    }

    /**
     * The exact fetched values {@code z} of flat indices {@code [start, start + count)}: {@code count·D}
     * floats, row {@code k} holding the {@code D} values of index {@code start + k}, hop-1 fetches
     * {@code u = 0 … U-1} first, then hop 2. {@code tableLimit}: see {@link #HOP_TABLE_LIMIT} (tests
     * pass 0 to exercise the table-free path).
     */
    static float[] fetches(Param param, HpkFile file, int start, int count, int tableLimit) {
        Fetcher fetcher = new Fetcher(param, file, tableLimit);
        float[] z = new float[count * fetcher.inputs];
        fetcher.fetch(start, count, z);
        return z;
    }

    /** The per-hash plan: space values, hash functions and (for small spaces) the hop-2 tables. */
    private static final class Fetcher {
        final int hashes;
        final int hops;
        final int inputs;
        final float[][] values;
        final Hp32[] first;
        final Hp32[] second;
        /** Per u with two hops and a small space: hop-2 bucket of each bucket b, sign in bit 31. */
        final int[][] table;

        Fetcher(Param param, HpkFile file, int tableLimit) {
            long seed = SchemeFields.checkedLong(param, "seed");
            hashes = (int) SchemeFields.checkedLong(param, "hashes");
            hops = (int) SchemeFields.checkedLong(param, "hops");
            inputs = hashes * hops;
            List<?> names = (List<?>) param.spec().get("spaces");
            values = new float[hashes][];
            first = new Hp32[hashes];
            second = new Hp32[hashes];
            table = new int[hashes][];
            for (int u = 0; u < hashes; u++) {
                values[u] = file.spaceValues((String) names.get(u % names.size()));
                first[u] = new Hp32(seed, u);
                if (hops == 2) {
                    second[u] = new Hp32(seed, hashes + u);
                    int size = values[u].length;
                    if (size <= tableLimit && size <= param.numel()) {
                        int[] t = new int[size];
                        for (int b = 0; b < size; b++) {
                            long h2 = second[u].hash(b);
                            t[b] = (int) (h2 % size) | (int) (h2 & Hp32.SIGN_BIT); // bucket < 2^30
                        }
                        table[u] = t;
                    }
                }
            }
        }

        void fetch(long start, int count, float[] z) {
            for (int u = 0; u < hashes; u++) {
                float[] space = values[u];
                long size = space.length;
                int[] t = table[u];
                for (int k = 0; k < count; k++) {
                    long h1 = first[u].hash(start + k);
                    int bucket = (int) (h1 % size);
                    int sign = (int) (h1 & Hp32.SIGN_BIT);
                    z[k * inputs + u] = SchemeFields.flip(space[bucket], sign);
                    if (hops == 2) {
                        int bucket2;
                        int sign2;
                        if (t != null) {
                            bucket2 = t[bucket] & 0x7FFFFFFF;
                            sign2 = t[bucket] & 0x80000000;
                        } else {
                            long h2 = second[u].hash(bucket);
                            bucket2 = (int) (h2 % size);
                            sign2 = (int) (h2 & Hp32.SIGN_BIT);
                        }
                        z[k * inputs + hashes + u] = SchemeFields.flip(space[bucket2], sign ^ sign2);
                    }
                }
            }
        }
    }
}
