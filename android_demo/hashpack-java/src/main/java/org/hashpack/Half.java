package org.hashpack;

/** IEEE 754 binary16 to float32, exactly (the conversion is lossless; NaN payloads are kept). */
final class Half {
    private Half() {}

    static float toFloat(short half) {
        int h = half & 0xFFFF;
        int sign = (h & 0x8000) << 16;
        int exponent = (h >>> 10) & 0x1F;
        int mantissa = h & 0x3FF;
        if (exponent == 0x1F) { // infinity or NaN
            return Float.intBitsToFloat(sign | 0x7F800000 | (mantissa << 13));
        }
        if (exponent != 0) { // normal: rebias 15 -> 127
            return Float.intBitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
        }
        if (mantissa == 0) {
            return Float.intBitsToFloat(sign); // signed zero
        }
        // subnormal: mantissa * 2^-24, exact in float32
        float magnitude = mantissa * 0x1p-24f;
        return sign == 0 ? magnitude : -magnitude;
    }

    static boolean isFinite(short half) {
        return (half & 0x7C00) != 0x7C00;
    }
}
