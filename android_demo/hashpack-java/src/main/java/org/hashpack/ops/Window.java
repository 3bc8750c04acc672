package org.hashpack.ops;

/**
 * The sliding-window geometry shared by Conv2d and the pools (PyTorch, {@code ceil_mode=False}):
 * {@code out = floor((in + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1} per spatial axis.
 */
final class Window {
    final int channels;
    final int inH;
    final int inW;
    final int kh;
    final int kw;
    final int sh;
    final int sw;
    final int ph;
    final int pw;
    final int dh;
    final int dw;
    final int outH;
    final int outW;

    Window(int channels, int inH, int inW, int[] kernel, int[] stride, int[] padding, int[] dilation)
            throws ShapeException {
        this.channels = channels;
        this.inH = inH;
        this.inW = inW;
        kh = kernel[0];
        kw = kernel[1];
        sh = stride[0];
        sw = stride[1];
        ph = padding[0];
        pw = padding[1];
        dh = dilation[0];
        dw = dilation[1];
        if (Math.min(Math.min(kh, kw), Math.min(Math.min(sh, sw), Math.min(dh, dw))) < 1) {
            throw new ShapeException("kernel, stride and dilation must be positive");
        }
        long paddedH = inH + 2L * ph;
        long paddedW = inW + 2L * pw;
        Limits.checkActivation((double) channels * paddedH * paddedW, "padded input");
        long spanH = (long) dh * (kh - 1) + 1;
        long spanW = (long) dw * (kw - 1) + 1;
        if (paddedH < spanH || paddedW < spanW) {
            throw new ShapeException("kernel [" + kh + ", " + kw + "] (dilation [" + dh + ", " + dw
                    + "]) is larger than the padded input [" + paddedH + ", " + paddedW + "]");
        }
        outH = (int) ((paddedH - spanH) / sh + 1);
        outW = (int) ((paddedW - spanW) / sw + 1);
    }

    /** First output column whose tap {@code kx} lands inside the input: {@code ox*sw - pw + kx*dw >= 0}. */
    int firstOx(int kx) {
        int offset = kx * dw - pw; // ix = ox * sw + offset
        return offset >= 0 ? 0 : ceilDiv(-offset, sw);
    }

    /** One past the last output column whose tap {@code kx} lands inside the input. */
    int endOx(int kx) {
        long offset = (long) kx * dw - pw;
        // ix <= inW - 1  <=>  ox <= (inW - 1 - offset) / sw
        long limit = inW - 1 - offset;
        if (limit < 0) {
            return 0;
        }
        return (int) Math.min(outW, limit / sw + 1);
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }
}
