package org.hashpack;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.math.BigInteger;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/** The strict parser behind the reader: Python's value model, RFC 8259 syntax, bounded nesting. */
public class JsonTest {
    private static Object parse(String text) {
        try {
            return Json.parse(text);
        } catch (Json.SyntaxException e) {
            throw new AssertionError(text + ": " + e.getMessage(), e);
        }
    }

    private static void rejects(String text) {
        try {
            Json.parse(text);
        } catch (Json.SyntaxException e) {
            return;
        }
        fail("accepted " + text);
    }

    @Test
    public void valuesHavePythonTypes() {
        Map<?, ?> m = (Map<?, ?>) parse(" {\"i\": -12, \"f\": 1.5, \"e\": 1e3, \"z\": -0, \"s\": \"a\\u00e9\\n\","
                + " \"b\": true, \"n\": null, \"l\": [1, [2, {}]], \"big\": 123456789012345678901234567890} ");
        assertEquals(BigInteger.valueOf(-12), m.get("i"));
        assertEquals(1.5, m.get("f"));
        assertEquals(1000.0, m.get("e")); // an exponent makes a float, as in Python
        assertEquals(BigInteger.ZERO, m.get("z"));
        assertEquals("a\u00e9\n", m.get("s"));
        assertEquals(Boolean.TRUE, m.get("b"));
        assertTrue(m.containsKey("n"));
        assertNull(m.get("n"));
        assertEquals(new BigInteger("123456789012345678901234567890"), m.get("big"));
        assertEquals(2, ((List<?>) m.get("l")).size());
    }

    @Test
    public void repeatedKeysAreRejected() {
        rejects("{\"a\": 1, \"b\": 2, \"a\": 3}");
        rejects("[{\"x\": {}, \"x\": {}}]");
        assertEquals(2, ((Map<?, ?>) parse("{\"a\": {\"a\": 1}, \"b\": {\"a\": 1}}")).size());
    }

    @Test
    public void hugeExponentIsInfinityLikePython() {
        assertEquals(Double.POSITIVE_INFINITY, parse("1e999"));
    }

    @Test
    public void surrogatePairsAndLoneSurrogates() {
        assertEquals("\uD83D\uDE00", parse("\"\\ud83d\\ude00\""));
        assertEquals("a\uD83D\uDE00b", parse("\"a\\uD83D\\uDE00b\""));
        rejects("\"\\ud800\""); // no UTF-8 form: the Python reader rejects it too
        rejects("\"\\udc00\\ud800\"");
        rejects("{\"\\ud800\": 1}");
        // a raw surrogate half next to an escape (raw pairs, escaped pairs and mixed ones are fine)
        rejects("\"\\n\uD800\"");
        rejects("\"\uDE00\\n\"");
        assertEquals("\n\uD83D\uDE00", parse("\"\\n\uD83D\uDE00\""));
        assertEquals("\uD83D\uDE00", parse("\"" + (char) 0xD83D + "\\ude00\""));
        assertEquals("\n\uE000\uFFFF", parse("\"\\n\uE000\\uffff\"")); // at or above U+D800, not surrogates
    }

    @Test
    public void rejectsNonJson() {
        for (String bad : new String[] {"", " ", "NaN", "Infinity", "-Infinity", "[1,]", "{\"a\":1,}", "{'a':1}",
                "[1 2]", "01", "1.", ".5", "1e", "+1", "tru", "nul", "\"a", "\"\\x\"", "\"\\u12\"", "\"a\tb\"",
                "{\"a\"}", "{1:2}", "[1]]", "[1] x", "// c\n1", "[", "{", "{\"a\":"}) {
            rejects(bad);
        }
    }

    @Test
    public void deepNestingIsAnErrorNotAStackOverflow() {
        StringBuilder deep = new StringBuilder();
        for (int i = 0; i < 1_000_000; i++) {
            deep.append('[');
        }
        rejects(deep.toString());
        StringBuilder ok = new StringBuilder();
        for (int i = 0; i < Json.MAX_DEPTH; i++) {
            ok.append('[');
        }
        for (int i = 0; i < Json.MAX_DEPTH; i++) {
            ok.append(']');
        }
        parse(ok.toString());
    }

    @Test
    public void overlongNumbersAreRejected() {
        char[] digits = new char[Json.MAX_NUMBER_LENGTH + 1];
        Arrays.fill(digits, '7');
        rejects(new String(digits));
    }

    @Test
    public void writeRoundTrips() {
        Object value = parse("{\"a\":[1,2.5,\"x\\\"y\\u00e9\",true,null,{}],\"b\":-3}");
        String text = Json.write(value);
        assertEquals("{\"a\":[1,2.5,\"x\\\"y\\u00e9\",true,null,{}],\"b\":-3}", text);
        assertEquals(value, parse(text));
    }
}
