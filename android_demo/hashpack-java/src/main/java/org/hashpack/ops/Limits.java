package org.hashpack.ops;

/**
 * Graph limits the reader enforces along with docs/FORMAT.md §6 (the same as the Python reader's):
 * the format bounds weights, these bound what a graph may ask of a runtime, so a hostile file
 * (huge padding, huge pooling windows) is a format error, not an OutOfMemoryError or a hang.
 */
public final class Limits {
    /** Elements per sample of any one value or temporary (padded or unfolded input): 1 GiB of float32. */
    public static final long MAX_ELEMENTS = 1L << 28;
    /** Elements per sample of all values of the graph together, the input included. */
    public static final long MAX_ACTIVATIONS = 1L << 28;
    /** Operations per sample of the whole graph. */
    public static final long MAX_WORK = 1L << 34;

    private Limits() {}
}
