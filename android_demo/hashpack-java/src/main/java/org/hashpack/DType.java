package org.hashpack;

/** The safetensors dtypes a {@code .hpk} file may hold (docs/FORMAT.md §2). */
public enum DType {
    F32(4),
    F16(2),
    I8(1);

    private final int itemSize;

    DType(int itemSize) {
        this.itemSize = itemSize;
    }

    /** Bytes per element. */
    public int itemSize() {
        return itemSize;
    }

    /** The dtype of a safetensors code, or null if hashpack does not use it. */
    static DType fromCode(Object code) {
        if ("F32".equals(code)) {
            return F32;
        }
        if ("F16".equals(code)) {
            return F16;
        }
        if ("I8".equals(code)) {
            return I8;
        }
        return null;
    }
}
