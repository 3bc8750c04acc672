package org.hashpack;

import java.io.File;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.Test;

/**
 * Random damage to the fixtures: whatever the bytes, the reader either returns a file that loads and
 * runs, or throws HpkFormatException; never another exception or error. Byte-level damage mostly
 * hits the checksum, so the structured cases re-sign the file after editing the metadata or table.
 */
public class FuzzTest {
    private static final String[] BASES = {"mlp.hpk", "lenet5.hpk", "mixed.hpk", "rescnn.hpk", "lenet5_int8.hpk",
        "lenet5_fresh.hpk", "rescnn_fresh_int8.hpk", "lenet5_funhash.hpk", "mlp_funhash_g_int8.hpk",
        "rescnn_fsnet_fp16.hpk", "zoo_blocks.hpk", "op_cases/embedding-padding-idx.hpk",
        "op_cases/mha-plumbing.hpk", "op_cases/constant-cls-pos.hpk", "tx_vit.hpk", "tx_text.hpk", "tx_bag_int8.hpk"};
    private static final Object[] PALETTE = {
        null, true, false, 0, 1, -1, 2, 3, 7, 16, 17, 64, 256, 257, 1 << 30, Integer.MAX_VALUE, 1L << 31, 1L << 32,
        Long.MAX_VALUE,
        new BigInteger("100000000000000000000000000000"), Integer.MIN_VALUE, 0.5, -0.0, 1e39, 1e-45, 1e300,
        "", "x", "Relu", "Gelu", "hashed", "dense", "float16", "int8", "F16", "I8", "golden/inputs",
        "spaces/fc1", "fc1", "fc1.weight", "fresh", "funhash", "fsnet", "fc1.g", "fc1.space2", "c1",
        "Mul", "Transpose", "Slice", "Mean", "Silu", "AdaptiveMaxPool2d", "ceil_mode", "perm", "dims",
        "LayerNorm", "Gelu", "MatMul", "Attention", "Constant", "Embedding", "int32", "dtype", "padding_idx",
        "approximate", "causal", "scale", "eps", "value",
    };

    private final Random random = new Random(20240601);

    private static byte[] base(String name) {
        return TestSupport.readBytes(new File(TestSupport.fixtures(), name));
    }

    /** Parses, and if that succeeds loads and runs; any throwable but HpkFormatException fails. */
    private static void survive(byte[] file, String what) {
        HpkFile parsed;
        try {
            parsed = HpkReader.parse(file, "fuzz.hpk");
        } catch (HpkFormatException expected) {
            return;
        } catch (Throwable t) {
            throw new AssertionError(what + ": reader threw " + t, t);
        }
        try {
            if (parsed.virtualParameterCount() > 20_000_000) {
                return; // valid but large (the limits allow 2^28): not worth the time here
            }
            Model model = new Model(parsed);
            model.run(new float[TestSupport.numel(model.inputShape())], 1);
        } catch (Throwable t) {
            throw new AssertionError(what + ": a file the reader accepted failed to load or run: " + t, t);
        }
    }

    @Test
    public void byteDamage() {
        for (String name : BASES) {
            byte[] original = base(name);
            int headerEnd = 8 + (int) java.nio.ByteBuffer.wrap(original).order(java.nio.ByteOrder.LITTLE_ENDIAN)
                    .getLong(0);
            for (int i = 0; i < 120; i++) {
                byte[] file;
                String what;
                switch (i % 5) {
                    case 0:
                        int length = random.nextInt(original.length);
                        file = Arrays.copyOf(original, length);
                        what = "truncated to " + length;
                        break;
                    case 1:
                        file = original.clone();
                        int at = random.nextInt(8);
                        file[at] = (byte) random.nextInt(256);
                        what = "prefix byte " + at;
                        break;
                    case 2:
                        file = original.clone();
                        int pos = 8 + random.nextInt(headerEnd - 8);
                        file[pos] = (byte) random.nextInt(256);
                        what = "header byte " + pos;
                        break;
                    case 3:
                        file = original.clone();
                        for (int k = 0; k < 4; k++) {
                            file[random.nextInt(file.length)] ^= (byte) (1 << random.nextInt(8));
                        }
                        what = "bit flips";
                        break;
                    default:
                        int cut = 8 + random.nextInt(headerEnd - 8);
                        file = new byte[original.length - 1];
                        System.arraycopy(original, 0, file, 0, cut);
                        System.arraycopy(original, cut + 1, file, cut, original.length - cut - 1);
                        what = "deleted header byte " + cut;
                }
                survive(file, name + ": " + what);
            }
        }
    }

    @Test
    public void resignedMetadataEdits() {
        for (String name : BASES) {
            byte[] original = base(name);
            for (int i = 0; i < 100; i++) {
                TestHpk hpk = TestHpk.parse(original);
                String what = mutate(hpk.meta, 1 + random.nextInt(2));
                survive(hpk.bytes(), name + ": " + what);
            }
        }
    }

    @Test
    public void tableEdits() {
        for (String name : BASES) {
            byte[] original = base(name);
            for (int i = 0; i < 40; i++) {
                TestHpk hpk = TestHpk.parse(original);
                String what = mutate(hpk.table, 1);
                survive(hpk.bytes(), name + ": table " + what);
            }
        }
    }

    /** Applies {@code count} random edits to a JSON tree; returns a description. */
    private String mutate(Map<String, Object> root, int count) {
        StringBuilder what = new StringBuilder();
        for (int n = 0; n < count; n++) {
            List<Object> path = new ArrayList<>();
            Object container = root;
            Object key = null;
            // walk down a random number of levels
            while (true) {
                List<Object> keys = container instanceof Map ? new ArrayList<Object>(((Map<?, ?>) container).keySet())
                        : indices((List<?>) container);
                if (keys.isEmpty()) {
                    break;
                }
                key = keys.get(random.nextInt(keys.size()));
                Object child = get(container, key);
                if (!(child instanceof Map || child instanceof List) || random.nextInt(4) == 0) {
                    break;
                }
                path.add(key);
                container = child;
                key = null;
            }
            int op = random.nextInt(4);
            if (key == null || op == 0) { // add a key or an element
                Object value = palette();
                if (container instanceof Map) {
                    @SuppressWarnings("unchecked")
                    Map<String, Object> map = (Map<String, Object>) container;
                    map.put("k" + random.nextInt(3), value);
                } else {
                    @SuppressWarnings("unchecked")
                    List<Object> list = (List<Object>) container;
                    list.add(value);
                }
                what.append(" add@").append(path);
            } else if (op == 1) { // remove
                if (container instanceof Map) {
                    ((Map<?, ?>) container).remove(key);
                } else {
                    ((List<?>) container).remove((int) (Integer) key);
                }
                what.append(" remove ").append(path).append('/').append(key);
            } else { // replace (twice as likely)
                Object value = palette();
                if (container instanceof Map) {
                    @SuppressWarnings("unchecked")
                    Map<String, Object> map = (Map<String, Object>) container;
                    map.put((String) key, value);
                } else {
                    @SuppressWarnings("unchecked")
                    List<Object> list = (List<Object>) container;
                    list.set((Integer) key, value);
                }
                what.append(" set ").append(path).append('/').append(key).append('=').append(Json.repr(value));
            }
        }
        return what.toString();
    }

    private static List<Object> indices(List<?> list) {
        List<Object> out = new ArrayList<>();
        for (int i = 0; i < list.size(); i++) {
            out.add(i);
        }
        return out;
    }

    private static Object get(Object container, Object key) {
        return container instanceof Map ? ((Map<?, ?>) container).get(key) : ((List<?>) container).get((Integer) key);
    }

    private Object palette() {
        int pick = random.nextInt(PALETTE.length + 4);
        if (pick >= PALETTE.length) { // small structured values
            switch (pick - PALETTE.length) {
                case 0:
                    return TestSupport.ints(random.nextInt(4), random.nextInt(4));
                case 1:
                    return TestSupport.list(null, random.nextInt(100));
                case 2:
                    return TestSupport.list();
                default:
                    return TestSupport.obj();
            }
        }
        Object v = PALETTE[pick];
        if (v instanceof Integer || v instanceof Long) {
            return BigInteger.valueOf(((Number) v).longValue());
        }
        return v;
    }
}
