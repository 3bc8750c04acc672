package org.hashpack;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * One tensor of the safetensors container: dtype, shape, and its bytes (a read-only little-endian
 * view into the file, checked to lie inside the data buffer).
 */
public final class StoredTensor {
    private final String name;
    private final DType dtype;
    private final long[] shape;
    private final long numel;
    private final ByteBuffer bytes;

    StoredTensor(String name, DType dtype, long[] shape, long numel, ByteBuffer bytes) {
        this.name = name;
        this.dtype = dtype;
        this.shape = shape;
        this.numel = numel;
        this.bytes = bytes;
    }

    public String name() {
        return name;
    }

    public DType dtype() {
        return dtype;
    }

    /** The shape (every dimension below 2^31). */
    public long[] shape() {
        return shape.clone();
    }

    /** Number of elements; {@code numel * itemSize} bytes are stored. */
    public long numel() {
        return numel;
    }

    /** The raw bytes: a fresh read-only view, little-endian, position 0. */
    public ByteBuffer bytes() {
        return bytes.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    boolean hasShape(long[] expected) {
        return Arrays.equals(shape, expected);
    }

    /** True unless a float element is NaN or infinite (always true for I8). */
    boolean allFinite() {
        ByteBuffer b = bytes();
        if (dtype == DType.F32) {
            for (int i = 0; i < numel; i++) {
                // exponent all ones <=> NaN or infinity
                if ((b.getInt(i * 4) & 0x7F800000) == 0x7F800000) {
                    return false;
                }
            }
        } else if (dtype == DType.F16) {
            for (int i = 0; i < numel; i++) {
                if (!Half.isFinite(b.getShort(i * 2))) {
                    return false;
                }
            }
        }
        return true;
    }

    /** The elements as float32 (F16 converted exactly, I8 as its integer value). */
    public float[] toFloatArray() {
        float[] out = new float[(int) numel]; // numel * itemSize <= file size < 2^31
        ByteBuffer b = bytes();
        switch (dtype) {
            case F32:
                b.asFloatBuffer().get(out);
                break;
            case F16:
                for (int i = 0; i < out.length; i++) {
                    out[i] = Half.toFloat(b.getShort(i * 2));
                }
                break;
            case I8:
                for (int i = 0; i < out.length; i++) {
                    out[i] = b.get(i);
                }
                break;
            default:
                throw new AssertionError(dtype);
        }
        return out;
    }

    String describe() {
        return describe(dtype, shape);
    }

    /** {@code F32[10, 100]}, for messages. */
    static String describe(DType dtype, long[] shape) {
        StringBuilder s = new StringBuilder(dtype.name()).append('[');
        for (int i = 0; i < shape.length; i++) {
            s.append(i > 0 ? ", " : "").append(shape[i]);
        }
        return s.append(']').toString();
    }
}
