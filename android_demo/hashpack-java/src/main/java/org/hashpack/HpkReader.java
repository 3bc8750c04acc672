package org.hashpack;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;

/**
 * Reads and fully validates {@code .hpk} files (docs/FORMAT.md §6): every check, in the order of
 * §6, before anything the file does not justify is allocated. Any problem, including an I/O error,
 * is an {@link HpkFormatException} whose message names the source and what is wrong.
 *
 * <pre>{@code
 * HpkFile file = HpkReader.read(new File("model.hpk"));
 * }</pre>
 */
public final class HpkReader {
    /** The largest file this reader holds in memory (Java arrays stop just below 2 GiB). */
    public static final long MAX_FILE_BYTES = Integer.MAX_VALUE - 8;

    /** Bytes asked of the stream per read call. */
    private static final int READ_CHUNK = 1 << 16;

    private HpkReader() {}

    /** Reads {@code file}; the source in messages is its path. */
    public static HpkFile read(File file) throws HpkFormatException {
        String source = file.getPath();
        if (file.isDirectory()) {
            throw new HpkFormatException(source, "is a directory, not a .hpk file");
        }
        long length = file.length();
        if (length > MAX_FILE_BYTES) {
            throw new HpkFormatException(source, "file of " + length + " bytes exceeds this reader's "
                    + MAX_FILE_BYTES + "-byte limit");
        }
        try (InputStream in = new FileInputStream(file)) {
            return parse(readAll(in, source, MAX_FILE_BYTES, (int) length), source);
        } catch (HpkFormatException e) {
            throw e;
        } catch (IOException e) {
            throw new HpkFormatException(source, "cannot be read (" + e.getMessage() + ")");
        }
    }

    /** Reads the file at {@code path}. */
    public static HpkFile read(String path) throws HpkFormatException {
        return read(new File(path));
    }

    /**
     * Reads a whole stream (e.g. an Android asset) of at most {@code maxBytes} bytes; the stream is
     * not closed. {@code source} names it in messages.
     */
    public static HpkFile read(InputStream in, String source, long maxBytes) throws HpkFormatException {
        return parse(readAll(in, source, Math.max(0, Math.min(maxBytes, MAX_FILE_BYTES)), 0), source);
    }

    /**
     * Every byte of {@code in}, at most {@code limit}. {@code expected} (the file's length, 0 if
     * unknown) sizes the first buffer, so a file whose length does not change is read into one array
     * of exactly its size; a stream longer than that grows the array, doubling, up to the limit.
     */
    private static byte[] readAll(InputStream in, String source, long limit, int expected)
            throws HpkFormatException {
        byte[] buffer = new byte[(int) Math.min(limit, Math.max(expected, 1 << 16))];
        int total = 0;
        try {
            while (true) {
                if (total == buffer.length) { // full: does the stream end here?
                    int next = in.read();
                    if (next < 0) {
                        break;
                    }
                    if (total >= limit) {
                        throw new HpkFormatException(source, "file exceeds the " + limit + "-byte limit");
                    }
                    buffer = Arrays.copyOf(buffer, (int) Math.min(limit, 2L * buffer.length));
                    buffer[total++] = (byte) next;
                    continue;
                }
                // at most READ_CHUNK per call: FileInputStream copies through a native buffer of the length asked
                int n = in.read(buffer, total, Math.min(buffer.length - total, READ_CHUNK));
                if (n < 0) {
                    break;
                }
                total += n;
            }
        } catch (HpkFormatException e) {
            throw e;
        } catch (IOException e) {
            throw new HpkFormatException(source, "cannot be read (" + e.getMessage() + ")");
        }
        return total == buffer.length ? buffer : Arrays.copyOf(buffer, total);
    }

    /** Parses and validates file bytes. The array is kept (tensors are views into it): do not modify it. */
    public static HpkFile parse(byte[] bytes, String source) throws HpkFormatException {
        Container container = Container.parse(bytes, source);
        return new Validator(container, source).run();
    }
}
