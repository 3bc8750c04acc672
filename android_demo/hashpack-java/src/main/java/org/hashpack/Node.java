package org.hashpack;

import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * One graph node (docs/FORMAT.md §5): op, unique name, input and output value names, param slots
 * (slot to param name) and attrs (as parsed, see {@link Json} for the value types).
 */
public final class Node {
    private final String op;
    private final String name;
    private final List<String> inputs;
    private final List<String> outputs;
    private final Map<String, String> params;
    private final Map<String, Object> attrs;

    Node(String op, String name, List<String> inputs, List<String> outputs, Map<String, String> params,
            Map<String, Object> attrs) {
        this.op = op;
        this.name = name;
        this.inputs = Collections.unmodifiableList(inputs);
        this.outputs = Collections.unmodifiableList(outputs);
        this.params = Collections.unmodifiableMap(params);
        this.attrs = Collections.unmodifiableMap(attrs);
    }

    public String op() {
        return op;
    }

    public String name() {
        return name;
    }

    public List<String> inputs() {
        return inputs;
    }

    public List<String> outputs() {
        return outputs;
    }

    /** The value this node produces (version 1 nodes have exactly one output). */
    public String output() {
        return outputs.get(0);
    }

    public Map<String, String> params() {
        return params;
    }

    public Map<String, Object> attrs() {
        return attrs;
    }

    /** "node 'name' (Op)", the prefix of every error message about this node. */
    public String describe() {
        return "node '" + name + "' (" + op + ")";
    }
}
