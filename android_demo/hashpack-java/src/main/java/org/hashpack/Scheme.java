package org.hashpack;

/**
 * A compression scheme (docs/FORMAT.md §4): how one param's values are stored and regenerated.
 * Version 1's schemes ({@code dense}, {@code hashed}, {@code fresh}, {@code funhash}, {@code fsnet})
 * are registered in {@link Schemes}; adding one is a class implementing this interface plus one
 * {@link Schemes#register} line.
 */
public interface Scheme {
    /** The {@code scheme} string of the metadata. */
    String name();

    /**
     * Checks the scheme's fields of {@code param} (through {@code v}, which also marks the tensors
     * it looks up as referenced) and returns how many stored values the param is generated from, for
     * the {@code 2^16 x} expansion limit of §6, or -1 if the limit does not apply (stored as-is).
     */
    long validate(Param param, Validator v) throws HpkFormatException;

    /**
     * Operations to regenerate one weight of a validated {@code param}, for the decode-work limit of
     * §6 ({@link Validator#MAX_DECODE_WORK}). Most schemes fetch one value per weight.
     */
    default long decodeWorkPerWeight(Param param) {
        return 1;
    }

    /**
     * The param's float32 values, row-major, {@code param.numel()} of them. Called only on params
     * that passed {@link #validate}.
     */
    float[] decode(Param param, HpkFile file);

    /**
     * As {@link #decode(Param, HpkFile)}, written into {@code out[0, numel)} when the scheme can: a
     * buffer reused across params saves allocating (and zeroing) one array per param. Returns the
     * array holding the values: {@code out}, or a new array of exactly {@code numel} values (the
     * default, and whenever {@code out} is null or too short).
     */
    default float[] decode(Param param, HpkFile file, float[] out) {
        return decode(param, file);
    }
}
