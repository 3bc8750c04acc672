package org.hashpack.ops;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/** The registry of graph ops (docs/FORMAT.md §5), by metadata name. */
public final class Ops {
    private static final Map<String, Op> OPS = new LinkedHashMap<>();

    static {
        register(new Linear());
        register(new Conv2d());
        register(new BatchNorm());
        for (Activation.Function f : Activation.Function.values()) {
            register(new Activation(f));
        }
        register(new MaxPool2d());
        register(new AvgPool2d());
        register(new GlobalAvgPool());
        register(new Flatten());
        register(new Reshape());
        register(new Add());
        register(new Concat());
        register(new Softmax());
        register(new Mul());
        register(new AdaptivePool2d(false));
        register(new AdaptivePool2d(true));
        register(new Transpose());
        register(new Slice());
        register(new Mean());
        register(new LayerNorm());
        register(new Gelu());
        register(new MatMul());
        register(new Attention());
        register(new Constant());
        register(new Embedding());
    }

    private Ops() {}

    private static void register(Op op) {
        OPS.put(op.name(), op);
    }

    /** The op named {@code name}, or null if unknown. */
    public static Op get(String name) {
        return OPS.get(name);
    }

    /** Every op, by name. */
    public static Map<String, Op> all() {
        return Collections.unmodifiableMap(OPS);
    }
}
