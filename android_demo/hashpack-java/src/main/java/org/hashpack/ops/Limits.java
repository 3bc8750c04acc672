package org.hashpack.ops;

/**
 * Resource limits of this runtime (not of the format): docs/FORMAT.md bounds weights, but a hostile
 * graph could still ask for enormous activations (huge padding) or work (huge pooling windows). These
 * limits turn such files into format errors at load time instead of an OutOfMemoryError or a hang.
 */
public final class Limits {
    /** Elements per sample of any activation, padded input included (1 GiB of float32). */
    public static final long MAX_ACTIVATION = 1L << 28;
    /** Multiply-adds (or compares) per sample of one node. */
    public static final long MAX_WORK = 1L << 36;

    private Limits() {}

    /** Checks an element count (a double: products of hostile dimensions cannot overflow it). */
    static void checkActivation(double elements, String what) throws ShapeException {
        if (elements > MAX_ACTIVATION) {
            throw new ShapeException(String.format("%s of %.0f elements per sample exceeds this runtime's limit of %d",
                    what, elements, MAX_ACTIVATION));
        }
    }

    static void checkWork(double operations) throws ShapeException {
        if (operations > MAX_WORK) {
            throw new ShapeException(String.format("needs %.3g operations per sample, above this runtime's limit of %d",
                    operations, MAX_WORK));
        }
    }

    /** The number of elements of a shape, as a double (exact up to 2^53, never overflows). */
    static double numel(int[] shape) {
        double n = 1;
        for (int d : shape) {
            n *= d;
        }
        return n;
    }
}
