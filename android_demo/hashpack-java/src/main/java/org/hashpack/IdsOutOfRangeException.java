package org.hashpack;

/**
 * A token id outside an Embedding's {@code [0, V)} rows was given to {@link Model#run(int[], int)}.
 * The caller's input is wrong, not the file, so this is an {@link IllegalArgumentException}, never an
 * {@link HpkFormatException} (docs/FORMAT.md §5); the message names the file, the node and the id.
 */
public class IdsOutOfRangeException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    public IdsOutOfRangeException(String message) {
        super(message);
    }
}
