package org.hashpack;

import java.util.Collections;
import java.util.Map;

/**
 * One parameter tensor of the graph (docs/FORMAT.md §3-§4): its scheme, virtual shape, and the
 * scheme-specific fields exactly as parsed (see {@link Json} for the value types).
 */
public final class Param {
    private final String name;
    private final String scheme;
    private final int[] shape;
    private final Map<String, Object> spec;

    Param(String name, String scheme, int[] shape, Map<String, Object> spec) {
        this.name = name;
        this.scheme = scheme;
        this.shape = shape;
        this.spec = Collections.unmodifiableMap(spec);
    }

    public String name() {
        return name;
    }

    public String scheme() {
        return scheme;
    }

    /** The virtual shape (PyTorch layout); every dimension positive. */
    public int[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    /** Number of virtual elements (at most 2^31 - 1, checked by the reader). */
    public long numel() {
        long n = 1;
        for (int d : shape) {
            n *= d; // d and n are below 2^31 here: the product cannot overflow a long
            if (n > Hp32.MAX_VIRTUAL_SIZE) {
                return Long.MAX_VALUE;
            }
        }
        return n;
    }

    /** The scheme's own fields (everything but {@code scheme} and {@code shape}). */
    public Map<String, Object> spec() {
        return spec;
    }
}
