package org.hashpack.ops;

/**
 * A node does not fit the shapes flowing into it, or would exceed a {@link Limits} bound. The reader
 * turns it into an {@link org.hashpack.HpkFormatException} naming the node.
 */
public class ShapeException extends Exception {
    private static final long serialVersionUID = 1L;

    public ShapeException(String message) {
        super(message);
    }
}
