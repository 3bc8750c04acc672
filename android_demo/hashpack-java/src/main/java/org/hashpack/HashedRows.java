package org.hashpack;

import java.math.BigInteger;
import org.hashpack.ops.Rows;

/**
 * The rows of a {@code hashed} {@code [V, D]} table (a HashedEmbedding), regenerated on demand: row
 * {@code r} is virtual elements {@code r·D .. r·D + D - 1}, bit-identical to the decoded table, so a
 * batch costs {@code ids × D} hashes instead of {@code V × D} (docs/FORMAT.md §4, TX_OPS: gather the
 * looked-up rows where the backend can).
 */
final class HashedRows implements Rows {
    private final int rows;
    private final int width;
    private final Hp32.Gather gather;

    /** The rows of a validated {@code hashed} param of rank 2. */
    HashedRows(Param param, HpkFile file) {
        this.rows = param.shape()[0];
        this.width = param.shape()[1];
        long seed = ((BigInteger) param.spec().get("seed")).longValue();
        this.gather = new Hp32.Gather(new Hp32(seed, 0), file.spaceValues((String) param.spec().get("space")));
    }

    /** True if {@code param}'s rows can be regenerated one at a time (a rank-2 {@code hashed} param). */
    static boolean supports(Param param) {
        return "hashed".equals(param.scheme()) && param.rank() == 2;
    }

    @Override
    public int rows() {
        return rows;
    }

    @Override
    public int width() {
        return width;
    }

    @Override
    public void copy(int row, float[] out, int offset) {
        gather.fill((long) row * width, out, offset, width);
    }
}
