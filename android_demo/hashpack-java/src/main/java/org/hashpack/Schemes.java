package org.hashpack;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The registry of known compression schemes, by metadata name. */
public final class Schemes {
    private static final Map<String, Scheme> SCHEMES = new LinkedHashMap<>();

    static {
        register(new DenseScheme());
        register(new HashedScheme());
        register(new FreshScheme());
        register(new FunHashScheme());
        register(new FsnetScheme());
    }

    private Schemes() {}

    /** Adds (or replaces) a scheme. Not thread-safe: register at startup, before reading files. */
    public static synchronized void register(Scheme scheme) {
        SCHEMES.put(scheme.name(), scheme);
    }

    /** The scheme named {@code name}, or null. */
    public static synchronized Scheme get(String name) {
        return SCHEMES.get(name);
    }

    /** The known scheme names, in registration order. */
    public static synchronized List<String> names() {
        return Collections.unmodifiableList(new ArrayList<>(SCHEMES.keySet()));
    }
}
