package org.hashpack;

/** A compression space (docs/FORMAT.md §3): K shared bucket values stored as float32, float16 or int8. */
public final class Space {
    private final String name;
    private final int size;
    private final String dtype;
    private final String tensor;
    private final float scale;

    Space(String name, int size, String dtype, String tensor, float scale) {
        this.name = name;
        this.size = size;
        this.dtype = dtype;
        this.tensor = tensor;
        this.scale = scale;
    }

    public String name() {
        return name;
    }

    /** K, the number of buckets, in [1, 2^30]. */
    public int size() {
        return size;
    }

    /** {@code "float32"}, {@code "float16"} or {@code "int8"}. */
    public String dtype() {
        return dtype;
    }

    /** The safetensors tensor holding the buckets. */
    public String tensor() {
        return tensor;
    }

    /** The int8 dequantization scale (exactly a float32), or NaN for float spaces. */
    public float scale() {
        return scale;
    }
}
