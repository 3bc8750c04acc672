package org.hashpack;

import java.math.BigInteger;

/**
 * {@code fsnet} (FSNet, Yang et al.): every filter is a contiguous, circular segment of one 1-D filter
 * summary, the space of {@code L} values (docs/FORMAT.md §4). For a virtual tensor {@code [O, ...]}
 * with {@code D = numel / O} values per filter, element {@code j} of filter {@code o} is
 * {@code space[(o·stride + j) mod L]}: plain copies, bit-identical to every other decoder. No hash
 * and no seed.
 */
final class FsnetScheme implements Scheme {
    @Override
    public String name() {
        return "fsnet";
    }

    @Override
    public long validate(Param param, Validator v) throws HpkFormatException {
        String where = SchemeFields.where(param);
        if (param.rank() < 1) {
            throw v.fail(where + ": fsnet needs a shape with a filter dimension, got a scalar");
        }
        Space space = SchemeFields.space(v, param, "space");
        int size = space.size();
        BigInteger stride = v.integer(param.spec(), "stride", where);
        if (stride.signum() < 1 || stride.compareTo(BigInteger.valueOf(size)) > 0) {
            throw v.fail(where + ": stride " + stride + " outside [1, L = " + size + "]");
        }
        long filters = param.shape()[0];
        long length = param.numel() / filters;
        long last = stride.longValue() * (filters - 1) + length - 1; // < 2^30 · 2^31 + 2^31: fits a long
        if (last > Hp32.MAX_VIRTUAL_SIZE) {
            throw v.fail(where + ": filter positions reach " + last + ", beyond int32 (2^31 - 1)");
        }
        return size;
    }

    @Override
    public float[] decode(Param param, HpkFile file) {
        float[] summary = file.spaceValues((String) param.spec().get("space"));
        int size = summary.length;
        int filters = param.shape()[0];
        int length = (int) (param.numel() / filters);
        long stride = SchemeFields.checkedLong(param, "stride");
        float[] out = new float[filters * length];
        for (int o = 0; o < filters; o++) {
            int position = (int) (o * stride % size);
            int j = 0;
            while (j < length) { // the segment, wrapping around the end of the summary as often as needed
                int run = Math.min(length - j, size - position);
                System.arraycopy(summary, position, out, o * length + j, run);
                j += run;
                position = 0;
            }
        }
        return out;
    }
}
