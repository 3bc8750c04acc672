package org.hashpack;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A strict JSON (RFC 8259) parser and a compact writer, with the value model of Python's
 * {@code json} module so that type checks read like the Python reader's:
 *
 * <ul>
 *   <li>object: {@code Map<String, Object>} (insertion order; a repeated key is an error);
 *   <li>array: {@code List<Object>}; string: {@code String}; {@code true}/{@code false}:
 *       {@code Boolean}; {@code null}: Java {@code null};
 *   <li>a number without fraction or exponent: {@code BigInteger} (exact, like Python's int);
 *       any other number: {@code Double} (correctly rounded; out-of-range exponents give infinity,
 *       as in Python).
 * </ul>
 *
 * <p>Hostile input is bounded: nesting is limited to {@link #MAX_DEPTH} (no recursion, no stack
 * overflow) and number literals to {@link #MAX_NUMBER_LENGTH} characters. {@code NaN},
 * {@code Infinity}, comments, single quotes, trailing commas, raw control characters in strings,
 * repeated keys and escapes that leave an unpaired surrogate (a string with no UTF-8 form) are
 * syntax errors, as in the Python reader's strict parse. With this class the library needs no JSON
 * dependency.
 */
final class Json {
    static final int MAX_DEPTH = 128;
    static final int MAX_NUMBER_LENGTH = 1000;

    /** A syntax error with the character offset where it was found. */
    static final class SyntaxException extends Exception {
        private static final long serialVersionUID = 1L;

        SyntaxException(String message, int position) {
            super(message + " at character " + position);
        }
    }

    private final String text;
    private final char[] chars; // the text's chars: the scanning loops index an array (no per-char call)
    private int pos;

    private Json(String text) {
        this.text = text;
        this.chars = text.toCharArray();
    }

    /** Parses one JSON value surrounded by optional whitespace. */
    static Object parse(String text) throws SyntaxException {
        Json parser = new Json(text);
        parser.skipWhitespace();
        Object value = parser.parseValue();
        parser.skipWhitespace();
        if (parser.pos != text.length()) {
            throw parser.error("extra data after the JSON value");
        }
        return value;
    }

    // ------------------------------------------------------------------------------------ parsing

    /**
     * Iterative descent: containers under construction live on an explicit stack, so nesting depth
     * costs heap (bounded by MAX_DEPTH), never Java stack.
     */
    private Object parseValue() throws SyntaxException {
        List<Object> stack = new ArrayList<>(); // Map or List under construction
        List<String> keys = new ArrayList<>(); // pending key per stack level (null for lists)
        Object value;
        while (true) {
            // Parse one value start; containers push and continue with their first element.
            char c = peek("a value");
            if (c == '{' || c == '[') {
                if (stack.size() >= MAX_DEPTH) {
                    throw error("nesting deeper than " + MAX_DEPTH + " levels");
                }
                pos++;
                skipWhitespace();
                if (c == '{') {
                    Map<String, Object> map = new LinkedHashMap<>();
                    if (peek("'}' or a key") == '}') {
                        pos++;
                        value = map;
                    } else {
                        stack.add(map);
                        keys.add(parseKey());
                        continue;
                    }
                } else {
                    List<Object> list = new ArrayList<>();
                    if (peek("']' or a value") == ']') {
                        pos++;
                        value = list;
                    } else {
                        stack.add(list);
                        keys.add(null);
                        continue;
                    }
                }
            } else {
                value = parseScalar(c);
            }
            // Attach the finished value to its container(s); close containers that end here.
            while (true) {
                if (stack.isEmpty()) {
                    return value;
                }
                int top = stack.size() - 1;
                Object container = stack.get(top);
                if (container instanceof Map) {
                    @SuppressWarnings("unchecked")
                    Map<String, Object> map = (Map<String, Object>) container;
                    if (map.containsKey(keys.get(top))) {
                        throw error("duplicate key " + repr(keys.get(top)));
                    }
                    map.put(keys.get(top), value);
                } else {
                    @SuppressWarnings("unchecked")
                    List<Object> list = (List<Object>) container;
                    list.add(value);
                }
                skipWhitespace();
                char next = peek("',' or the end of a container");
                pos++;
                if (next == ',') {
                    skipWhitespace();
                    if (container instanceof Map) {
                        keys.set(top, parseKey());
                    }
                    break; // parse the next element
                }
                if ((container instanceof Map && next == '}') || (container instanceof List && next == ']')) {
                    stack.remove(top);
                    keys.remove(top);
                    value = container;
                    continue; // the closed container is itself a finished value
                }
                pos--;
                throw error("expected ',' or '" + (container instanceof Map ? '}' : ']') + "'");
            }
        }
    }

    private String parseKey() throws SyntaxException {
        if (peek("a key") != '"') {
            throw error("expected a string key");
        }
        String key = parseString();
        skipWhitespace();
        if (peek("':'") != ':') {
            throw error("expected ':' after a key");
        }
        pos++;
        skipWhitespace();
        return key;
    }

    private Object parseScalar(char c) throws SyntaxException {
        if (c == '"') {
            return parseString();
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            return parseNumber();
        }
        if (text.startsWith("true", pos)) {
            pos += 4;
            return Boolean.TRUE;
        }
        if (text.startsWith("false", pos)) {
            pos += 5;
            return Boolean.FALSE;
        }
        if (text.startsWith("null", pos)) {
            pos += 4;
            return null;
        }
        throw error("unexpected character " + describe(c));
    }

    private String parseString() throws SyntaxException {
        int start = ++pos; // after the opening quote
        StringBuilder out = null;
        boolean surrogates = false; // a char of the string (raw or escaped) is >= U+D800
        final char[] chars = this.chars;
        while (true) {
            if (pos >= chars.length) {
                throw error("unterminated string starting at character " + (start - 1));
            }
            char c = chars[pos];
            if (c == '"') {
                if (out == null) {
                    return text.substring(start, pos++);
                }
                String s = out.append(chars, start, pos - start).toString();
                if (surrogates) { // below U+D800 there is no surrogate to pair
                    checkSurrogates(s);
                }
                pos++;
                return s;
            }
            if (c < 0x20) {
                throw error("raw control character " + describe(c) + " in a string");
            }
            if (c != '\\') {
                surrogates |= c >= 0xD800;
                pos++;
                continue;
            }
            if (out == null) {
                out = new StringBuilder();
            }
            out.append(chars, start, pos - start);
            if (pos + 1 >= chars.length) {
                throw error("unterminated escape");
            }
            char e = chars[pos + 1];
            pos += 2;
            switch (e) {
                case '"': out.append('"'); break;
                case '\\': out.append('\\'); break;
                case '/': out.append('/'); break;
                case 'b': out.append('\b'); break;
                case 'f': out.append('\f'); break;
                case 'n': out.append('\n'); break;
                case 'r': out.append('\r'); break;
                case 't': out.append('\t'); break;
                case 'u':
                    if (pos + 4 > text.length()) {
                        throw error("truncated \\u escape");
                    }
                    int code = 0;
                    for (int i = 0; i < 4; i++) {
                        int digit = Character.digit(text.charAt(pos + i), 16);
                        if (digit < 0) {
                            throw error("invalid \\u escape");
                        }
                        code = code * 16 + digit;
                    }
                    out.append((char) code); // surrogate halves are paired up or rejected at the end
                    surrogates |= code >= 0xD800;
                    pos += 4;
                    break;
                default:
                    pos -= 2;
                    throw error("invalid escape \\" + describe(e));
            }
            start = pos;
        }
    }

    /** Escapes can spell unpaired surrogates; such a string has no UTF-8 form. */
    private void checkSurrogates(String s) throws SyntaxException {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                throw error(String.format("unpaired surrogate \\u%04x in a string", (int) c));
            }
        }
    }

    private Object parseNumber() throws SyntaxException {
        int start = pos;
        if (text.charAt(pos) == '-') {
            pos++;
        }
        if (pos < text.length() && text.charAt(pos) == '0') {
            pos++;
        } else if (!digits()) {
            throw error("invalid number");
        }
        boolean integer = true;
        if (pos < text.length() && text.charAt(pos) == '.') {
            pos++;
            integer = false;
            if (!digits()) {
                throw error("invalid number: no digits after '.'");
            }
        }
        if (pos < text.length() && (text.charAt(pos) == 'e' || text.charAt(pos) == 'E')) {
            pos++;
            integer = false;
            if (pos < text.length() && (text.charAt(pos) == '+' || text.charAt(pos) == '-')) {
                pos++;
            }
            if (!digits()) {
                throw error("invalid number: no digits in the exponent");
            }
        }
        if (pos - start > MAX_NUMBER_LENGTH) {
            throw error("number literal longer than " + MAX_NUMBER_LENGTH + " characters");
        }
        String literal = text.substring(start, pos);
        return integer ? (Object) new BigInteger(literal) : (Object) Double.valueOf(literal);
    }

    private boolean digits() {
        int start = pos;
        while (pos < text.length() && text.charAt(pos) >= '0' && text.charAt(pos) <= '9') {
            pos++;
        }
        return pos > start;
    }

    private void skipWhitespace() {
        while (pos < chars.length) {
            char c = chars[pos];
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                return;
            }
            pos++;
        }
    }

    private char peek(String expected) throws SyntaxException {
        if (pos >= chars.length) {
            throw error("unexpected end of input, expected " + expected);
        }
        return chars[pos];
    }

    private SyntaxException error(String message) {
        return new SyntaxException(message, pos);
    }

    private static String describe(char c) {
        return c >= 0x20 && c < 0x7F ? "'" + c + "'" : String.format("U+%04X", (int) c);
    }

    // ------------------------------------------------------------------------------------ writing

    /**
     * Compact JSON ({@code ,} and {@code :} separators, non-ASCII escaped) of a value built from the
     * types above (plus any {@code Number}); maps are written in their iteration order.
     */
    static String write(Object value) {
        StringBuilder out = new StringBuilder();
        write(value, out);
        return out.toString();
    }

    private static void write(Object value, StringBuilder out) {
        if (value == null) {
            out.append("null");
        } else if (value instanceof String) {
            writeString((String) value, out);
        } else if (value instanceof Boolean || value instanceof BigInteger || value instanceof Long
                || value instanceof Integer) {
            out.append(value);
        } else if (value instanceof Number) {
            double d = ((Number) value).doubleValue();
            if (Double.isNaN(d) || Double.isInfinite(d)) {
                throw new IllegalArgumentException("JSON cannot hold " + d);
            }
            out.append(d);
        } else if (value instanceof Map) {
            out.append('{');
            Iterator<? extends Map.Entry<?, ?>> it = ((Map<?, ?>) value).entrySet().iterator();
            while (it.hasNext()) {
                Map.Entry<?, ?> entry = it.next();
                writeString((String) entry.getKey(), out);
                out.append(':');
                write(entry.getValue(), out);
                if (it.hasNext()) {
                    out.append(',');
                }
            }
            out.append('}');
        } else if (value instanceof List) {
            out.append('[');
            List<?> list = (List<?>) value;
            for (int i = 0; i < list.size(); i++) {
                if (i > 0) {
                    out.append(',');
                }
                write(list.get(i), out);
            }
            out.append(']');
        } else {
            throw new IllegalArgumentException("cannot write " + value.getClass().getName() + " as JSON");
        }
    }

    private static void writeString(String s, StringBuilder out) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c < 0x20 || c >= 0x7F) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        out.append('"');
    }

    // ------------------------------------------------------------------------------ type helpers

    /** The JSON type name of a parsed value, for error messages. */
    static String typeName(Object value) {
        if (value == null) {
            return "null";
        }
        if (value instanceof String) {
            return "string";
        }
        if (value instanceof Boolean) {
            return "boolean";
        }
        if (value instanceof BigInteger) {
            return "integer";
        }
        if (value instanceof Double) {
            return "number";
        }
        if (value instanceof Map) {
            return "object";
        }
        if (value instanceof List) {
            return "array";
        }
        return value.getClass().getSimpleName();
    }

    /** A short rendering of a parsed value for error messages (long values are cut). */
    static String repr(Object value) {
        String s;
        try {
            s = value instanceof Double ? value.toString() : write(value);
        } catch (IllegalArgumentException e) {
            s = String.valueOf(value);
        }
        return s.length() > 80 ? s.substring(0, 77) + "..." : s;
    }
}
