package org.hashpack;

/** A graph input or output (docs/FORMAT.md §3): its name and shape, batch dimension first. */
public final class ValueInfo {
    private final String name;
    private final int[] sampleShape;

    ValueInfo(String name, int[] sampleShape) {
        this.name = name;
        this.sampleShape = sampleShape;
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
