package org.hashpack.ops;

import java.util.List;
import java.util.Map;
import org.hashpack.Node;
import org.hashpack.Param;

/**
 * What MaxPool2d and AvgPool2d share: torch's padding rule, the window shape rule and the optional
 * {@code ceil_mode} attr (absent means false, so files written before it existed stay valid).
 */
abstract class Pooling extends Op {
    Pooling(String name) {
        super(name, 1);
    }

    /** Declares the optional {@code ceil_mode}; called by subclasses after their required attrs. */
    final void ceilModeAttr() {
        optionalAttr("ceil_mode", AttrKind.BOOL);
    }

    static boolean ceilMode(Node node) {
        return boolAttr(node, "ceil_mode", false);
    }

    @Override
    protected String validate(Node node, Map<String, Param> params) {
        int[] kernel = intsAttr(node, "kernel");
        int[] padding = intsAttr(node, "padding");
        // torch's rule: padding at most half the kernel, so no window lies entirely in the padding
        if (padding[0] > kernel[0] / 2 || padding[1] > kernel[1] / 2) {
            return "padding " + Window.pair(padding) + " exceeds half the kernel " + Window.pair(kernel);
        }
        return null;
    }

    int[] dilation(Node node) {
        return node.attrs().containsKey("dilation") ? intsAttr(node, "dilation") : new int[] {1, 1};
    }

    Window window(Node node, int[] x) throws ShapeException {
        return Window.of(x, intsAttr(node, "kernel"), intsAttr(node, "stride"), intsAttr(node, "padding"),
                dilation(node), ceilMode(node));
    }

    @Override
    public Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException {
        Window win = window(node, inputs.get(0));
        return new Inference(new int[] {win.channels, win.outH, win.outW},
                (double) win.channels * win.outH * win.outW * win.kh * win.kw);
    }

    Window checkedWindow(Node node, int[] x) {
        return Window.checked(x, intsAttr(node, "kernel"), intsAttr(node, "stride"), intsAttr(node, "padding"),
                dilation(node), ceilMode(node));
    }
}
