package org.hashpack.ops;

/**
 * The sliding-window geometry shared by Conv2d and the pools (PyTorch's rule):
 * {@code out = floor((in + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1} per spatial axis;
 * with {@code ceil_mode} (pools only) the division rounds up, minus one if the last window would
 * start at or past {@code in + pad} (torch's {@code pooling_output_shape}). The dilated kernel must
 * fit the padded input in both modes; the last ceil-mode window may then reach past the padded
 * input, and the pools clip it.
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

    private Window(int[] x, int[] kernel, int[] stride, int[] padding, int[] dilation, int outH, int outW) {
        channels = x[0];
        inH = x[1];
        inW = x[2];
        kh = kernel[0];
        kw = kernel[1];
        sh = stride[0];
        sw = stride[1];
        ph = padding[0];
        pw = padding[1];
        dh = dilation[0];
        dw = dilation[1];
        this.outH = outH;
        this.outW = outW;
    }

    /** The window over sample shape {@code x = {C, H, W}}; checks that it can run. */
    static Window of(int[] x, int[] kernel, int[] stride, int[] padding, int[] dilation) throws ShapeException {
        return of(x, kernel, stride, padding, dilation, false);
    }

    /** As {@link #of(int[], int[], int[], int[], int[])}, with torch's {@code ceil_mode} rule if {@code ceil}. */
    static Window of(int[] x, int[] kernel, int[] stride, int[] padding, int[] dilation, boolean ceil)
            throws ShapeException {
        Op.requireRank(x, "input", 4);
        if (Math.min(Math.min(kernel[0], kernel[1]), Math.min(Math.min(stride[0], stride[1]),
                Math.min(dilation[0], dilation[1]))) < 1) {
            throw new ShapeException("kernel " + pair(kernel) + ", stride " + pair(stride) + " and dilation "
                    + pair(dilation) + " must be positive");
        }
        long paddedH = x[1] + 2L * padding[0];
        long paddedW = x[2] + 2L * padding[1];
        long spanH = (long) dilation[0] * (kernel[0] - 1) + 1;
        long spanW = (long) dilation[1] * (kernel[1] - 1) + 1;
        if (paddedH < spanH || paddedW < spanW) { // in ceil mode too (docs/FORMAT.md §5)
            throw new ShapeException("kernel " + pair(kernel) + " (dilation " + pair(dilation)
                    + ") is larger than the padded input " + Op.show(x) + " + padding " + pair(padding));
        }
        long outH = extent(paddedH - spanH, stride[0], ceil, x[1], padding[0]);
        long outW = extent(paddedW - spanW, stride[1], ceil, x[2], padding[1]);
        // ceil mode: the last window may reach past the padded input (the numpy runtime pads that far)
        long extraH = Math.max(0, (outH - 1) * stride[0] + spanH - paddedH);
        long extraW = Math.max(0, (outW - 1) * stride[1] + spanW - paddedW);
        Op.checkElements((double) x[0] * (paddedH + extraH) * (paddedW + extraW), "the padded input");
        return new Window(x, kernel, stride, padding, dilation, (int) outH, (int) outW);
    }

    /** Windows along one axis, {@code room = in + 2 * pad - span >= 0}. */
    private static long extent(long room, int stride, boolean ceil, int in, int pad) {
        if (!ceil) {
            return room / stride + 1;
        }
        long out = (room + stride - 1) / stride + 1;
        if ((out - 1) * stride >= (long) in + pad) { // the last window would start in the right padding
            out--;
        }
        return out;
    }

    /** The same window for a node already checked by {@link #of}. */
    static Window checked(int[] x, int[] kernel, int[] stride, int[] padding, int[] dilation) {
        return checked(x, kernel, stride, padding, dilation, false);
    }

    /** The same window for a node already checked by {@link #of} with this {@code ceil}. */
    static Window checked(int[] x, int[] kernel, int[] stride, int[] padding, int[] dilation, boolean ceil) {
        try {
            return of(x, kernel, stride, padding, dilation, ceil);
        } catch (ShapeException e) {
            throw new IllegalStateException("kernel() on a node that did not pass infer(): " + e.getMessage(), e);
        }
    }

    static String pair(int[] values) {
        return "[" + values[0] + ", " + values[1] + "]";
    }

    /** First output column whose tap {@code kx} lands inside the input: {@code ox*sw - pw + kx*dw >= 0}. */
    int firstOx(int kx) {
        long offset = (long) kx * dw - pw; // ix = ox * sw + offset
        return offset >= 0 ? 0 : (int) Math.min(outW, (-offset + sw - 1) / sw);
    }

    /** One past the last output column whose tap {@code kx} lands inside the input. */
    int endOx(int kx) {
        long offset = (long) kx * dw - pw;
        long limit = inW - 1 - offset; // ix <= inW - 1  <=>  ox <= limit / sw
        if (limit < 0) {
            return 0;
        }
        return (int) Math.min(outW, limit / sw + 1);
    }
}
