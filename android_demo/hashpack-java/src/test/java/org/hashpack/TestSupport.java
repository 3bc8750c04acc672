package org.hashpack;

import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Shared helpers: fixture paths (system properties), raw little-endian arrays, JSON literals. */
final class TestSupport {
    private TestSupport() {}

    /** The directory written by tests/java_fixtures.py ({@code -Dhashpack.fixtures=...}). */
    static File fixtures() {
        return requiredPath("hashpack.fixtures");
    }

    /** tests/vectors/hash_vectors.json ({@code -Dhashpack.vectors=...}). */
    static File vectors() {
        return requiredPath("hashpack.vectors");
    }

    private static File requiredPath(String property) {
        String value = System.getProperty(property);
        if (value == null) {
            fail("system property -D" + property + " is not set (run android_demo/hashpack-java/run_tests.sh)");
        }
        File file = new File(value);
        assertTrue(property + " = " + value + " does not exist", file.exists());
        return file;
    }

    static byte[] readBytes(File file) {
        try {
            return Files.readAllBytes(file.toPath());
        } catch (IOException e) {
            throw new AssertionError("cannot read " + file, e);
        }
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> readJson(File file) {
        try {
            return (Map<String, Object>) Json.parse(new String(readBytes(file), StandardCharsets.UTF_8));
        } catch (Json.SyntaxException e) {
            throw new AssertionError(file + ": " + e.getMessage(), e);
        }
    }

    static float[] readFloats(File file) {
        ByteBuffer b = ByteBuffer.wrap(readBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    static int[] readInts(File file) {
        ByteBuffer b = ByteBuffer.wrap(readBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        int[] out = new int[b.remaining() / 4];
        b.asIntBuffer().get(out);
        return out;
    }

    static int[] toInts(Object jsonList) {
        List<?> list = (List<?>) jsonList;
        int[] out = new int[list.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = ((Number) list.get(i)).intValue();
        }
        return out;
    }

    static int numel(int[] shape) {
        int n = 1;
        for (int d : shape) {
            n *= d;
        }
        return n;
    }

    /** A JSON object literal: {@code obj("a", 1, "b", list(2, 3))}. Integers become BigInteger. */
    static Map<String, Object> obj(Object... keyValues) {
        Map<String, Object> out = new LinkedHashMap<>();
        for (int i = 0; i < keyValues.length; i += 2) {
            out.put((String) keyValues[i], normalize(keyValues[i + 1]));
        }
        return out;
    }

    static List<Object> list(Object... values) {
        List<Object> out = new ArrayList<>();
        for (Object v : values) {
            out.add(normalize(v));
        }
        return out;
    }

    static List<Object> ints(int... values) {
        List<Object> out = new ArrayList<>();
        for (int v : values) {
            out.add(java.math.BigInteger.valueOf(v));
        }
        return out;
    }

    private static Object normalize(Object v) {
        if (v instanceof Integer || v instanceof Long) {
            return java.math.BigInteger.valueOf(((Number) v).longValue());
        }
        return v;
    }

    /** Asserts {@code action} throws an HpkFormatException whose message contains every fragment. */
    static HpkFormatException assertFormatError(ThrowingRunnable action, String... fragments) {
        try {
            action.run();
        } catch (HpkFormatException e) {
            for (String fragment : fragments) {
                if (!e.getMessage().contains(fragment)) {
                    throw new AssertionError("message \"" + e.getMessage() + "\" lacks \"" + fragment + "\"", e);
                }
            }
            return e;
        } catch (Throwable t) {
            throw new AssertionError("expected HpkFormatException containing " + Arrays.toString(fragments)
                    + ", got " + t, t);
        }
        throw new AssertionError("expected HpkFormatException containing " + Arrays.toString(fragments)
                + ", nothing was thrown");
    }

    interface ThrowingRunnable {
        void run() throws Exception;
    }
}
