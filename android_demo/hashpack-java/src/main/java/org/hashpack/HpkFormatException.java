package org.hashpack;

import java.io.IOException;

/**
 * The one exception hashpack-java throws for a bad {@code .hpk} file (docs/FORMAT.md §6): truncated,
 * corrupt, hostile, or using something this reader does not support (unknown op, scheme, version).
 *
 * <p>It extends {@link IOException} (like {@link java.util.zip.ZipException}): a bad file is a
 * problem with input the caller chose to read, every call that reads a file already handles
 * {@code IOException}, and a checked type makes "the model file may be bad" impossible to forget.
 * The reader turns every other failure it can meet (I/O errors included) into this type, so
 * {@code catch (HpkFormatException e)} is all a caller needs around {@link HpkReader} and
 * {@link Model#load}.
 *
 * <p>The message is {@code "<source>: <problem>"}, like the Python reader's {@code HpkFormatError}.
 */
public class HpkFormatException extends IOException {
    private static final long serialVersionUID = 1L;

    private final String source;
    private final String problem;

    public HpkFormatException(String source, String problem) {
        super(source + ": " + problem);
        this.source = source;
        this.problem = problem;
    }

    /** The file (path or caller-given name) the problem was found in. */
    public String source() {
        return source;
    }

    /** What is wrong, without the source prefix. */
    public String problem() {
        return problem;
    }
}
