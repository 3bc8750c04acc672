package org.hashpack;

import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.Test;

/** {@link StoredTensor#allFinite} checks every element, whatever its place in the chunks it copies. */
public class StoredTensorTest {
    private static final int N = 2 * 4096 + 5; // two full chunks and a partial one

    private static StoredTensor f32(int[] bits) {
        ByteBuffer b = ByteBuffer.allocate(4 * bits.length).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : bits) {
            b.putInt(v);
        }
        b.flip();
        return new StoredTensor("t", DType.F32, new long[] {bits.length}, bits.length, b.asReadOnlyBuffer());
    }

    private static StoredTensor f16(short[] halves) {
        ByteBuffer b = ByteBuffer.allocate(2 * halves.length).order(ByteOrder.LITTLE_ENDIAN);
        for (short v : halves) {
            b.putShort(v);
        }
        b.flip();
        return new StoredTensor("t", DType.F16, new long[] {halves.length}, halves.length, b.asReadOnlyBuffer());
    }

    @Test
    public void float32NonFiniteAnywhereIsFound() {
        int[] finite = {0, 0x80000000, 0x7F7FFFFF, 0xFF7FFFFF, 1, 0x807FFFFF, Float.floatToRawIntBits(1.5f)};
        int[] bits = new int[N];
        for (int i = 0; i < N; i++) {
            bits[i] = finite[i % finite.length];
        }
        assertTrue(f32(bits).allFinite());
        int[] bad = {0x7F800000, 0xFF800000, 0x7FC00000, 0xFF800001, 0x7FFFFFFF};
        for (int at : new int[] {0, 4095, 4096, 4097, 8191, 8192, N - 1}) {
            for (int value : bad) {
                int[] copy = bits.clone();
                copy[at] = value;
                assertFalse("0x" + Integer.toHexString(value) + " at " + at, f32(copy).allFinite());
            }
        }
        assertTrue(f32(new int[0]).allFinite());
        assertFalse(f32(new int[] {0x7F800000}).allFinite());
    }

    @Test
    public void float16NonFiniteAnywhereIsFound() {
        short[] halves = new short[N];
        for (int i = 0; i < N; i++) {
            halves[i] = (short) (i % 2 == 0 ? 0x7BFF : 0xFBFF); // +-65504, the largest finite halves
        }
        assertTrue(f16(halves).allFinite());
        short[] bad = {(short) 0x7C00, (short) 0xFC00, (short) 0x7E00, (short) 0xFC01};
        for (int at : new int[] {0, 4095, 4096, 4097, N - 1}) {
            for (short value : bad) {
                short[] copy = halves.clone();
                copy[at] = value;
                assertFalse("0x" + Integer.toHexString(value & 0xffff) + " at " + at, f16(copy).allFinite());
            }
        }
    }
}
