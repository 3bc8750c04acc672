package org.hashpack;

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The safetensors container (docs/FORMAT.md §2), checked per §6 steps 1-3: the length prefix, the
 * JSON header with its {@code __metadata__}, and a tensor table whose entries tile the data buffer
 * exactly. Nothing is allocated beyond the header text before these checks pass.
 */
final class Container {
    static final long MAX_HEADER_BYTES = 16L * 1024 * 1024;
    static final int MAX_NAME_LENGTH = 256;
    static final int MAX_RANK = 8;
    static final String METADATA_KEY = "hashpack";
    static final String CHECKSUM_KEY = "hashpack.sha256";

    final Map<String, String> metadata;
    final Map<String, StoredTensor> tensors; // in data-buffer order
    final ByteBuffer data; // the whole data buffer, read-only

    private Container(Map<String, String> metadata, Map<String, StoredTensor> tensors, ByteBuffer data) {
        this.metadata = metadata;
        this.tensors = tensors;
        this.data = data;
    }

    /** One raw table entry before the tiling check; offsets are exact (any size). */
    private static final class Entry {
        final String name;
        final DType dtype;
        final long[] shape;
        final long numel;
        final BigInteger begin;
        final BigInteger end;

        Entry(String name, DType dtype, long[] shape, long numel, BigInteger begin, BigInteger end) {
            this.name = name;
            this.dtype = dtype;
            this.shape = shape;
            this.numel = numel;
            this.begin = begin;
            this.end = end;
        }
    }

    static Container parse(byte[] blob, String source) throws HpkFormatException {
        // §6.1: the length prefix.
        if (blob.length < 8) {
            throw fail(source, "truncated: " + blob.length + " bytes, a .hpk file is at least 8");
        }
        ByteBuffer file = ByteBuffer.wrap(blob).order(ByteOrder.LITTLE_ENDIAN);
        long headerLength = file.getLong(0); // u64: negative here means >= 2^63
        if (headerLength < 0 || headerLength > MAX_HEADER_BYTES) {
            throw fail(source, "not a .hpk file: header length " + Long.toUnsignedString(headerLength) + " exceeds the "
                    + MAX_HEADER_BYTES + "-byte limit");
        }
        if (8 + headerLength > blob.length) {
            throw fail(source, "truncated: header claims " + headerLength + " bytes, file has "
                    + (blob.length - 8) + " after the prefix");
        }
        int dataStart = 8 + (int) headerLength;

        // §6.2: UTF-8 JSON object with __metadata__ holding the two string keys.
        Object parsed;
        try {
            String text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(blob, 8, (int) headerLength))
                    .toString();
            parsed = Json.parse(text);
        } catch (CharacterCodingException e) {
            throw fail(source, "header is not valid UTF-8 JSON (invalid UTF-8)");
        } catch (Json.SyntaxException e) {
            throw fail(source, "header is not valid UTF-8 JSON (" + e.getMessage() + ")");
        }
        if (!(parsed instanceof Map)) {
            throw fail(source, "not a .hpk file: header is not a JSON object");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> header = new LinkedHashMap<>((Map<String, Object>) parsed);
        Object rawMetadata = header.remove("__metadata__");
        Map<String, String> metadata = new LinkedHashMap<>();
        if (rawMetadata instanceof Map) {
            for (Map.Entry<?, ?> e : ((Map<?, ?>) rawMetadata).entrySet()) {
                if (!(e.getValue() instanceof String)) {
                    metadata = null;
                    break;
                }
                metadata.put((String) e.getKey(), (String) e.getValue());
            }
        } else {
            metadata = null;
        }
        if (metadata == null) {
            throw fail(source, "header has no __metadata__ object of strings");
        }
        if (!metadata.containsKey(METADATA_KEY) || !metadata.containsKey(CHECKSUM_KEY)) {
            throw fail(source, "not a hashpack file: __metadata__ lacks '" + METADATA_KEY + "' or '"
                    + CHECKSUM_KEY + "'");
        }

        // §6.3: every entry well formed, then the entries tile the data buffer exactly.
        long dataLength = blob.length - dataStart;
        List<Entry> entries = new ArrayList<>(header.size());
        for (Map.Entry<String, Object> e : header.entrySet()) {
            entries.add(checkEntry(source, e.getKey(), e.getValue()));
        }
        Collections.sort(entries, (a, b) -> {
            int c = a.begin.compareTo(b.begin);
            return c != 0 ? c : a.end.compareTo(b.end);
        });
        BigInteger position = BigInteger.ZERO;
        for (Entry entry : entries) {
            int c = entry.begin.compareTo(position);
            if (c != 0) {
                String what = c < 0 ? "overlaps the previous tensor" : "leaves a gap before it";
                throw fail(source, "tensor '" + entry.name + "' starts at byte " + entry.begin + " and " + what
                        + " (expected " + position + ")");
            }
            position = entry.end;
        }
        int cmp = position.compareTo(BigInteger.valueOf(dataLength));
        if (cmp != 0) {
            throw fail(source, "tensors cover " + position + " bytes but the data buffer has " + dataLength
                    + (cmp > 0 ? " (truncated file)" : " (trailing bytes)"));
        }

        // Every offset is now within [0, dataLength]: views are safe.
        ByteBuffer data = ByteBuffer.wrap(blob, dataStart, (int) dataLength).slice().asReadOnlyBuffer();
        Map<String, StoredTensor> tensors = new LinkedHashMap<>();
        for (Entry entry : entries) {
            ByteBuffer view = data.duplicate();
            view.position(entry.begin.intValue());
            view.limit(entry.end.intValue());
            tensors.put(entry.name, new StoredTensor(entry.name, entry.dtype, entry.shape, entry.numel,
                    view.slice().order(ByteOrder.LITTLE_ENDIAN)));
        }
        return new Container(Collections.unmodifiableMap(metadata), Collections.unmodifiableMap(tensors), data);
    }

    private static Entry checkEntry(String source, String name, Object raw) throws HpkFormatException {
        if (!validName(name)) {
            String shown = name.length() > 60 ? name.substring(0, 60) : name;
            throw fail(source, "tensor name " + Json.repr(shown)
                    + " is not allowed (ASCII [A-Za-z0-9_./-], <= 256 chars)");
        }
        String where = "tensor '" + name + "'";
        if (!(raw instanceof Map)) {
            throw fail(source, where + ": entry is not an object");
        }
        Map<?, ?> entry = (Map<?, ?>) raw;
        DType dtype = DType.fromCode(entry.get("dtype"));
        if (dtype == null) {
            throw fail(source, where + ": unsupported dtype " + Json.repr(entry.get("dtype")) + " (F32, F16 or I8)");
        }
        Object rawShape = entry.get("shape");
        boolean shapeOk = rawShape instanceof List && ((List<?>) rawShape).size() <= MAX_RANK;
        if (shapeOk) {
            for (Object d : (List<?>) rawShape) {
                shapeOk &= d instanceof BigInteger && ((BigInteger) d).signum() >= 0
                        && ((BigInteger) d).bitLength() <= 31;
            }
        }
        if (!shapeOk) {
            throw fail(source, where + ": shape " + Json.repr(rawShape) + " is not a list of at most " + MAX_RANK
                    + " integers in [0, " + Integer.MAX_VALUE + "]");
        }
        Object rawOffsets = entry.get("data_offsets");
        boolean offsetsOk = rawOffsets instanceof List && ((List<?>) rawOffsets).size() == 2;
        if (offsetsOk) {
            for (Object o : (List<?>) rawOffsets) {
                offsetsOk &= o instanceof BigInteger && ((BigInteger) o).signum() >= 0;
            }
        }
        if (!offsetsOk) {
            throw fail(source, where + ": data_offsets " + Json.repr(rawOffsets) + " is not [begin, end]");
        }
        List<?> dims = (List<?>) rawShape;
        BigInteger numel = BigInteger.ONE; // exact: 8 dimensions below 2^31 can exceed 2^63
        long[] shape = new long[dims.size()];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = ((BigInteger) dims.get(i)).longValue();
            numel = numel.multiply(BigInteger.valueOf(shape[i]));
        }
        BigInteger begin = (BigInteger) ((List<?>) rawOffsets).get(0);
        BigInteger end = (BigInteger) ((List<?>) rawOffsets).get(1);
        BigInteger needed = numel.multiply(BigInteger.valueOf(dtype.itemSize()));
        if (!end.subtract(begin).equals(needed)) {
            throw fail(source, where + ": shape " + Json.repr(rawShape) + " of " + dtype + " needs " + needed
                    + " bytes, offsets give " + end.subtract(begin));
        }
        // numel <= end - begin, which the tiling check bounds by the data length; until then a huge
        // numel is only carried, never used.
        long numelLong = numel.bitLength() < 64 ? numel.longValue() : Long.MAX_VALUE;
        return new Entry(name, dtype, shape, numelLong, begin, end);
    }

    static boolean validName(String name) {
        if (name.isEmpty() || name.length() > MAX_NAME_LENGTH) {
            return false;
        }
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            boolean ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                    || c == '_' || c == '.' || c == '/' || c == '-';
            if (!ok) {
                return false;
            }
        }
        return true;
    }

    /** The UTF-8 bytes of a string, rejecting lone surrogates (which have no UTF-8 form). */
    static byte[] utf8(String text) throws CharacterCodingException {
        ByteBuffer encoded = StandardCharsets.UTF_8.newEncoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
                .encode(CharBuffer.wrap(text));
        byte[] out = new byte[encoded.remaining()];
        encoded.get(out);
        return out;
    }

    private static HpkFormatException fail(String source, String message) {
        return new HpkFormatException(source, message);
    }
}
