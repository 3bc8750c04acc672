package org.hashpack;

import static org.hashpack.TestSupport.assertFormatError;
import static org.hashpack.TestSupport.ints;
import static org.hashpack.TestSupport.list;
import static org.hashpack.TestSupport.obj;

import java.io.File;
import java.math.BigInteger;
import java.util.Map;
import org.junit.Test;

/**
 * Malformed fields of the fresh, funhash and fsnet schemes (docs/FORMAT.md §4, mirrored from the
 * Python reader's checks): wrong types, out-of-range values, missing and dangling references. Each
 * must raise HpkFormatException naming the param and the field, never another exception. The cases
 * edit one param of a fixture and re-sign the file, so the field check under test is what fires.
 */
public class SchemeFieldsTest {
    private static final Object REMOVE = new Object();
    private static final BigInteger HUGE = new BigInteger("100000000000000000000000000000");
    /** Values of the wrong JSON type for an integer field. */
    private static final Object[] NOT_INTEGERS = {null, true, 1.0, 0.5, "1", list(1), obj()};

    private static TestHpk fixture(String name) {
        return TestHpk.parse(TestSupport.readBytes(new File(TestSupport.fixtures(), name + ".hpk")));
    }

    /** Sets (or with REMOVE deletes) field {@code key} of param {@code param}; the reader must reject it. */
    private static void rejects(String fixture, String param, String key, Object value, String... fragments) {
        TestHpk hpk = fixture(fixture);
        Map<String, Object> spec = hpk.param(param);
        if (value == REMOVE) {
            spec.remove(key);
        } else {
            spec.put(key, value instanceof Integer || value instanceof Long
                    ? BigInteger.valueOf(((Number) value).longValue()) : value);
        }
        final byte[] bytes = hpk.bytes();
        String[] all = new String[fragments.length + 1];
        all[0] = "bad.hpk: param '" + param + "'";
        System.arraycopy(fragments, 0, all, 1, fragments.length);
        assertFormatError(() -> HpkReader.parse(bytes, "bad.hpk"), all);
    }

    private static void accepts(TestHpk hpk) throws HpkFormatException {
        new Model(HpkReader.parse(hpk.bytes(), "good.hpk"));
    }

    @Test
    public void unmodifiedFixturesAreValid() throws HpkFormatException {
        for (String name : new String[] {"lenet5_fresh", "lenet5_funhash", "mlp_funhash_identity", "lenet5_fsnet"}) {
            accepts(fixture(name));
        }
    }

    // ------------------------------------------------------------------------------------- fresh
    // lenet5_fresh: c1.weight is [6, 1, 5, 5] with 9 bands over space c1 (19 buckets).

    @Test
    public void freshShape() {
        rejects("lenet5_fresh", "c1.weight", "shape", ints(6, 25, 1), "fresh needs a 4-D [out, in, kh, kw] shape");
        rejects("lenet5_fresh", "c1.weight", "shape", ints(150), "fresh needs a 4-D");
        rejects("lenet5_fresh", "c1.weight", "shape", ints(6, 1, 33, 1), "fresh kernel 33×1 exceeds the 32×32 limit");
        rejects("lenet5_fresh", "c1.weight", "shape", ints(1, 1, 5, 40), "fresh kernel 5×40 exceeds");
    }

    @Test
    public void freshSpace() {
        rejects("lenet5_fresh", "c1.weight", "space", REMOVE, "missing field 'space'");
        rejects("lenet5_fresh", "c1.weight", "space", 3, "field 'space' has the wrong type (integer");
        rejects("lenet5_fresh", "c1.weight", "space", list("c1"), "field 'space' has the wrong type (array");
        rejects("lenet5_fresh", "c1.weight", "space", "nope", "unknown space 'nope'");
    }

    @Test
    public void freshSeed() {
        checkSeed("lenet5_fresh", "c1.weight");
    }

    @Test
    public void freshBands() {
        String f = "lenet5_fresh";
        String p = "c1.weight";
        rejects(f, p, "bands", REMOVE, "missing field 'bands'");
        rejects(f, p, "bands", 19, "field 'bands' has the wrong type (integer");
        rejects(f, p, "bands", obj("0", 19), "field 'bands' has the wrong type (object");
        rejects(f, p, "bands", list(), "0 bands, a 5×5 kernel allows 1 to 9");
        rejects(f, p, "bands", ints(19, 0, 0, 0, 0, 0, 0, 0, 0, 0), "10 bands, a 5×5 kernel allows 1 to 9");
        rejects(f, p, "bands", ints(20, -1), "band bucket count -1 is not an integer in [0, 2^30]");
        rejects(f, p, "bands", list(1 << 30, 1L << 30), "band bucket counts sum to 2147483648, space 'c1' has 19");
        rejects(f, p, "bands", list((1L << 30) + 1), "band bucket count 1073741825 is not an integer in [0, 2^30]");
        rejects(f, p, "bands", list(HUGE), "band bucket count 100000000000000000000000000000 is not an integer");
        rejects(f, p, "bands", list(19.0), "band bucket count 19.0 is not an integer");
        rejects(f, p, "bands", list(true), "band bucket count true is not an integer");
        rejects(f, p, "bands", list((Object) null), "band bucket count null is not an integer");
        rejects(f, p, "bands", list("19"), "band bucket count \"19\" is not an integer");
        rejects(f, p, "bands", ints(10, 8), "band bucket counts sum to 18, space 'c1' has 19");
        rejects(f, p, "bands", ints(0), "band bucket counts sum to 0, space 'c1' has 19");
    }

    @Test
    public void freshBandsMayBeEmptyButMustCoverTheSpace() throws HpkFormatException {
        TestHpk hpk = fixture("lenet5_fresh");
        hpk.param("c1.weight").put("bands", ints(0, 0, 19)); // only band 2: low frequencies dropped
        accepts(hpk);
        hpk.param("c1.weight").put("bands", ints(19)); // nb = 1: hashed in the DCT domain
        accepts(hpk);
    }

    // ----------------------------------------------------------------------------------- funhash
    // lenet5_funhash: fc1.weight is [120, 400], spaces [fc1, fc1.space2], U = 2, hops = 2, H = 4,
    // g = fc1.g (4·4 + 2·4 + 1 = 25 values); c1.g has 7.

    @Test
    public void funhashSpaces() {
        String f = "lenet5_funhash";
        String p = "fc1.weight";
        rejects(f, p, "spaces", REMOVE, "missing field 'spaces'");
        rejects(f, p, "spaces", "fc1", "field 'spaces' has the wrong type (string");
        rejects(f, p, "spaces", list(), "spaces must list one or two distinct space names, got []");
        rejects(f, p, "spaces", list("fc1", "fc1"), "spaces must list one or two distinct space names");
        rejects(f, p, "spaces", list("fc1", "fc1.space2", "fc2"), "spaces must list one or two distinct");
        rejects(f, p, "spaces", list("fc1", 3), "spaces must list one or two distinct space names, got [\"fc1\",3]");
        rejects(f, p, "spaces", list(list("fc1")), "spaces must list one or two distinct space names");
        rejects(f, p, "spaces", list((Object) null), "spaces must list one or two distinct space names");
        rejects(f, p, "spaces", list("fc1", "nope"), "unknown space 'nope'");
    }

    @Test
    public void funhashSeed() {
        checkSeed("lenet5_funhash", "fc1.weight");
    }

    @Test
    public void funhashHashesHopsHidden() {
        String f = "lenet5_funhash";
        String p = "fc1.weight";
        for (String key : new String[] {"hashes", "hops", "hidden"}) {
            rejects(f, p, key, REMOVE, "missing field '" + key + "'");
            for (Object value : NOT_INTEGERS) {
                rejects(f, p, key, value, "field '" + key + "' has the wrong type");
            }
        }
        rejects(f, p, "hashes", 0, "hashes = 0 outside [1, 16]");
        rejects(f, p, "hashes", 17, "hashes = 17 outside [1, 16]");
        rejects(f, p, "hashes", HUGE, "hashes = 100000000000000000000000000000 outside [1, 16]");
        rejects(f, p, "hashes", -(1L << 32), "hashes = -4294967296 outside [1, 16]");
        rejects(f, p, "hops", 0, "hops = 0 must be 1 or 2");
        rejects(f, p, "hops", 3, "hops = 3 must be 1 or 2");
        rejects(f, p, "hops", -1, "hops = -1 must be 1 or 2");
        rejects(f, p, "hops", HUGE.add(BigInteger.ONE), "must be 1 or 2");
        rejects(f, p, "hashes", 1, "2 spaces but only 1 hash(es): a space would be unused");
        rejects(f, p, "hidden", -1, "hidden = -1 outside [0, 256]");
        rejects(f, p, "hidden", 257, "hidden = 257 outside [0, 256]");
        rejects(f, p, "hidden", 5, "g space 'fc1.g' has 25 values, a 4→5→1 MLP needs 31");
        rejects(f, p, "hops", 1, "g space 'fc1.g' has 25 values, a 2→4→1 MLP needs 17");
        rejects(f, p, "hidden", 0, "hidden = 0 (g = identity) needs hashes = 1 and hops = 1");
    }

    @Test
    public void funhashG() {
        String f = "lenet5_funhash";
        String p = "fc1.weight";
        rejects(f, p, "g", REMOVE, "missing field 'g'");
        rejects(f, p, "g", 7, "field 'g' has the wrong type (integer");
        rejects(f, p, "g", null, "field 'g' has the wrong type (null");
        rejects(f, p, "g", list("fc1.g"), "field 'g' has the wrong type (array");
        rejects(f, p, "g", "nope", "g space 'nope' is unknown or is also a bucket space");
        rejects(f, p, "g", "fc1", "g space 'fc1' is unknown or is also a bucket space");
        rejects(f, p, "g", "fc1.space2", "g space 'fc1.space2' is unknown or is also a bucket space");
        rejects(f, p, "g", "c1.g", "g space 'c1.g' has 7 values, a 4→4→1 MLP needs 25");
    }

    @Test
    public void funhashIdentityTakesNoG() throws HpkFormatException {
        // mlp_funhash_identity: U = 1, hops = 1, H = 0, no g.
        rejects("mlp_funhash_identity", "fc1.weight", "g", "fc2", "hidden = 0 (g = identity) must not name a g space");
        rejects("mlp_funhash_identity", "fc1.weight", "g", null, "must not name a g space");
        rejects("mlp_funhash_identity", "fc1.weight", "hops", 2, "needs hashes = 1 and hops = 1");
        rejects("mlp_funhash_identity", "fc1.weight", "hashes", 2, "needs hashes = 1 and hops = 1");
        rejects("mlp_funhash_identity", "fc1.weight", "hidden", 1, "missing field 'g'");
        TestHpk hpk = fixture("mlp_funhash_identity");
        hpk.param("fc1.weight").put("hops", BigInteger.valueOf(1)); // unchanged: still valid
        hpk.param("fc1.weight").put("k0", "unknown keys are ignored");
        accepts(hpk);
    }

    @Test
    public void funhashExpansionCountsOnlyBucketSpaces() {
        // 2^16 × (2995 + 2995) buckets; the g space is not a stored value for the limit
        TestHpk hpk = fixture("lenet5_funhash");
        hpk.param("fc1.weight").put("shape", ints(65536, 5991));
        final byte[] bytes = hpk.bytes();
        assertFormatError(() -> HpkReader.parse(bytes, "bad.hpk"), "param 'fc1.weight': ",
                "virtual elements from 5990 stored values exceeds the 65536x expansion limit");
    }

    // ------------------------------------------------------------------------------------- fsnet
    // lenet5_fsnet: c1.weight is [6, 1, 5, 5], space c1 (L = 19), stride 3; fc1 has L = 6000.

    @Test
    public void fsnetShape() {
        rejects("lenet5_fsnet", "c1.weight", "shape", list(),
                "fsnet needs a shape with a filter dimension, got a scalar");
    }

    @Test
    public void fsnetSpace() {
        rejects("lenet5_fsnet", "c1.weight", "space", REMOVE, "missing field 'space'");
        rejects("lenet5_fsnet", "c1.weight", "space", 19, "field 'space' has the wrong type (integer");
        rejects("lenet5_fsnet", "c1.weight", "space", "nope", "unknown space 'nope'");
    }

    @Test
    public void fsnetStride() {
        String f = "lenet5_fsnet";
        String p = "c1.weight";
        rejects(f, p, "stride", REMOVE, "missing field 'stride'");
        for (Object value : NOT_INTEGERS) {
            rejects(f, p, "stride", value, "field 'stride' has the wrong type");
        }
        rejects(f, p, "stride", 0, "stride 0 outside [1, L = 19]");
        rejects(f, p, "stride", -3, "stride -3 outside [1, L = 19]");
        rejects(f, p, "stride", 20, "stride 20 outside [1, L = 19]");
        rejects(f, p, "stride", HUGE, "stride 100000000000000000000000000000 outside [1, L = 19]");
        // 6000 · (400000 - 1) + 1 - 1 > 2^31 - 1: filter positions would overflow int32
        TestHpk hpk = fixture(f);
        hpk.param("fc1.weight").put("shape", ints(400000, 1));
        hpk.param("fc1.weight").put("stride", BigInteger.valueOf(6000));
        final byte[] bytes = hpk.bytes();
        assertFormatError(() -> HpkReader.parse(bytes, "bad.hpk"), "param 'fc1.weight': filter positions reach "
                + "2399994000, beyond int32 (2^31 - 1)");
    }

    @Test
    public void fsnetStrideAtTheLimitsIsValid() throws HpkFormatException {
        TestHpk hpk = fixture("lenet5_fsnet");
        hpk.param("c1.weight").put("stride", BigInteger.valueOf(19)); // t = L: every filter starts at 0 mod L
        accepts(hpk);
        hpk.param("c1.weight").put("stride", BigInteger.ONE);
        accepts(hpk);
    }

    // ------------------------------------------------------------------------------------ shared

    private static void checkSeed(String fixture, String param) {
        rejects(fixture, param, "seed", REMOVE, "missing field 'seed'");
        for (Object value : NOT_INTEGERS) {
            rejects(fixture, param, "seed", value, "field 'seed' has the wrong type");
        }
        rejects(fixture, param, "seed", -1, "seed -1 is not a 32-bit unsigned integer");
        rejects(fixture, param, "seed", 1L << 32, "seed 4294967296 is not a 32-bit unsigned integer");
        rejects(fixture, param, "seed", HUGE, "seed 100000000000000000000000000000 is not a 32-bit unsigned");
    }
}
