package org.hashpack;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * One tensor of the safetensors container: dtype, shape, and its bytes (a read-only little-endian
 * view into the file, checked to lie inside the data buffer).
 */
public final class StoredTensor {
    /** Elements checked per bulk copy by {@link #allFinite} (16 KiB of float32). */
    private static final int FINITE_CHUNK = 4096;

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
        // In chunks copied out of the file's bytes: a max over the masked exponents is a loop the JIT
        // can vectorize (every element is checked; a NaN or infinity has the largest masked value).
        ByteBuffer b = bytes();
        if (dtype == DType.F32) {
            java.nio.IntBuffer values = b.asIntBuffer();
            int[] chunk = new int[(int) Math.min(numel, FINITE_CHUNK)];
            while (values.hasRemaining()) {
                int n = Math.min(chunk.length, values.remaining());
                values.get(chunk, 0, n);
                int peak = 0;
                for (int i = 0; i < n; i++) {
                    peak = Math.max(peak, chunk[i] & 0x7F800000);
                }
                if (peak == 0x7F800000) { // exponent all ones <=> NaN or infinity
                    return false;
                }
            }
        } else if (dtype == DType.F16) {
            java.nio.ShortBuffer values = b.asShortBuffer();
            short[] chunk = new short[(int) Math.min(numel, FINITE_CHUNK)];
            while (values.hasRemaining()) {
                int n = Math.min(chunk.length, values.remaining());
                values.get(chunk, 0, n);
                int peak = 0;
                for (int i = 0; i < n; i++) {
                    peak = Math.max(peak, chunk[i] & 0x7C00);
                }
                if (peak == 0x7C00) { // as Half.isFinite
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
