package org.hashpack;

import java.math.BigInteger;

/**
 * Field checks shared by the schemes (docs/FORMAT.md §4), phrased like the Python reader's so that a
 * malformed field gives the same kind of message in both: the param, the field and what is wrong.
 */
final class SchemeFields {
    private SchemeFields() {}

    /** {@code "param 'name'"}: the prefix of every message about {@code param}. */
    static String where(Param param) {
        return "param '" + param.name() + "'";
    }

    /** The space named by the string field {@code key}; it must be declared in {@code spaces}. */
    static Space space(Validator v, Param param, String key) throws HpkFormatException {
        String where = where(param);
        String name = v.string(param.spec(), key, where);
        Space space = v.space(name);
        if (space == null) {
            throw v.fail(where + ": unknown space '" + name + "'");
        }
        return space;
    }

    /** The {@code seed} field: an integer in [0, 2^32). */
    static long seed(Validator v, Param param) throws HpkFormatException {
        String where = where(param);
        BigInteger seed = v.integer(param.spec(), "seed", where);
        if (seed.signum() < 0 || seed.bitLength() > 32) {
            throw v.fail(where + ": seed " + seed + " is not a 32-bit unsigned integer");
        }
        return seed.longValue();
    }

    /** The integer field {@code key}, which must lie in {@code [low, high]}. */
    static int intInRange(Validator v, Param param, String key, int low, int high) throws HpkFormatException {
        String where = where(param);
        BigInteger value = v.integer(param.spec(), key, where);
        if (value.compareTo(BigInteger.valueOf(low)) < 0 || value.compareTo(BigInteger.valueOf(high)) > 0) {
            throw v.fail(where + ": " + key + " = " + value + " outside [" + low + ", " + high + "]");
        }
        return value.intValue();
    }

    /** The value of a field the scheme's {@code validate} already checked to be an integer. */
    static long checkedLong(Param param, String key) {
        return ((BigInteger) param.spec().get(key)).longValue();
    }

    /** {@code value} with its sign bit XORed with {@code signBit} (0 or 0x80000000): a bit-exact negation. */
    static float flip(float value, int signBit) {
        return Float.intBitsToFloat(Float.floatToRawIntBits(value) ^ signBit);
    }
}
