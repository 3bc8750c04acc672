package org.hashpack;

import java.math.BigInteger;

/**
 * {@code hashed} (HashedNets, Chen et al. 2015): virtual element {@code i} is
 * {@code sign(i) * space[bucket(i)]} with hash function 0 of the param's seed (docs/FORMAT.md §4).
 */
final class HashedScheme implements Scheme {
    @Override
    public String name() {
        return "hashed";
    }

    @Override
    public long validate(Param param, Validator v) throws HpkFormatException {
        String where = "param '" + param.name() + "'";
        String space = v.string(param.spec(), "space", where);
        Space declared = v.space(space);
        if (declared == null) {
            throw v.fail(where + ": unknown space '" + space + "'");
        }
        BigInteger seed = v.integer(param.spec(), "seed", where);
        if (seed.signum() < 0 || seed.bitLength() > 32) {
            throw v.fail(where + ": seed " + seed + " is not a 32-bit unsigned integer");
        }
        return declared.size();
    }

    @Override
    public float[] decode(Param param, HpkFile file) {
        return decode(param, file, null);
    }

    @Override
    public float[] decode(Param param, HpkFile file, float[] out) {
        float[] values = file.spaceValues((String) param.spec().get("space"));
        long seed = ((BigInteger) param.spec().get("seed")).longValue();
        int numel = (int) param.numel();
        if (out == null || out.length < numel) {
            out = new float[numel];
        }
        new Hp32(seed, 0).gatherSigned(values, out, numel);
        return out;
    }
}
