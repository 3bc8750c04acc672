package org.hashpack;

/**
 * A graph input or output (docs/FORMAT.md §3): its name, shape (batch dimension first) and element
 * type (float32, or int32 token ids for an input).
 */
public final class ValueInfo {
    private final String name;
    private final int[] sampleShape;
    private final boolean ids;

    ValueInfo(String name, int[] sampleShape) {
        this(name, sampleShape, false);
    }

    ValueInfo(String name, int[] sampleShape, boolean ids) {
        this.name = name;
        this.sampleShape = sampleShape;
        this.ids = ids;
    }

    /** {@code "int32"} for a graph input of token ids ({@code inputs[0].dtype}), else {@code "float32"}. */
    public String dtype() {
        return ids ? "int32" : "float32";
    }

    /** True for an int32 graph input (token ids, fed to {@code Model.run(int[], int)}). */
    public boolean isIds() {
        return ids;
    }

    public String name() {
        return name;
    }

    /** The shape without the batch dimension (every dimension positive). */
    public int[] sampleShape() {
        return sampleShape.clone();
    }

    /** Elements per batch item. */
    public long sampleSize() {
        long n = 1;
        for (int d : sampleShape) {
            n *= d;
        }
        return n;
    }
}
