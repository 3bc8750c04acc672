package org.hashpack.ops;

import java.math.BigInteger;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.hashpack.Node;
import org.hashpack.Param;
import org.hashpack.Tensor;

/**
 * A graph op of docs/FORMAT.md §5: its signature (inputs, param slots with ranks, attrs with kinds),
 * checked on every node when a file is read ({@link #check}), and {@link #bind}, which checks the
 * node against the shapes flowing into it and returns the kernel that computes it.
 */
public abstract class Op {
    /** How an attr value is typed (the parsed JSON types of {@code org.hashpack.Json}). */
    public enum AttrKind {
        /** an integer */
        INT,
        /** true or false */
        BOOL,
        /** an integer or a non-integral number */
        FLOAT,
        /** a list of two non-negative integers */
        PAIR,
        /** a list of at most 8 integers */
        INTS
    }

    private final String name;
    private final int numInputs; // -1: one or more
    private final Map<String, Integer> params = new LinkedHashMap<>();
    private final Map<String, Integer> optionalParams = new LinkedHashMap<>();
    private final Map<String, AttrKind> attrs = new LinkedHashMap<>();

    protected Op(String name, int numInputs) {
        this.name = name;
        this.numInputs = numInputs;
    }

    protected final void param(String slot, int rank) {
        params.put(slot, rank);
    }

    protected final void optionalParam(String slot, int rank) {
        optionalParams.put(slot, rank);
    }

    protected final void attr(String attr, AttrKind kind) {
        attrs.put(attr, kind);
    }

    /** The op name of the metadata. */
    public final String name() {
        return name;
    }

    /**
     * An error message if {@code node} does not fit this op's signature (with {@code params} the
     * node's slots resolved to params), else null. Run by the reader on every node.
     */
    public final String check(Node node, Map<String, Param> params) {
        int inputs = node.inputs().size();
        if (numInputs >= 0 && inputs != numInputs) {
            return "takes " + numInputs + " input(s), got " + inputs;
        }
        if (numInputs < 0 && inputs == 0) {
            return "takes at least one input";
        }
        for (String slot : params.keySet()) {
            if (!this.params.containsKey(slot) && !optionalParams.containsKey(slot)) {
                return "unexpected param '" + slot + "'";
            }
        }
        Map<String, Integer> slots = new LinkedHashMap<>(this.params);
        slots.putAll(optionalParams);
        for (Map.Entry<String, Integer> slot : slots.entrySet()) {
            Param param = params.get(slot.getKey());
            if (param == null) {
                if (this.params.containsKey(slot.getKey())) {
                    return "missing param '" + slot.getKey() + "'";
                }
                continue;
            }
            if (param.rank() != slot.getValue()) {
                return "param '" + slot.getKey() + "' has shape " + Arrays.toString(param.shape()) + ", expected rank "
                        + slot.getValue();
            }
        }
        for (Map.Entry<String, AttrKind> attr : attrs.entrySet()) {
            if (!node.attrs().containsKey(attr.getKey())) {
                return "missing attr '" + attr.getKey() + "'";
            }
            Object value = node.attrs().get(attr.getKey());
            if (!matches(attr.getValue(), value)) {
                return "attr '" + attr.getKey() + "' = " + value + " is not a valid " + attr.getValue().name().toLowerCase();
            }
        }
        TreeSet<String> extra = new TreeSet<>(node.attrs().keySet());
        extra.removeAll(attrs.keySet());
        if (!extra.isEmpty()) {
            return "unexpected attr '" + extra.first() + "'";
        }
        return validate(node, params);
    }

    /** Op-specific checks that need only the params (run by the reader after the signature check). */
    protected String validate(Node node, Map<String, Param> params) {
        return null;
    }

    /**
     * Checks the node against its input shapes (without the batch dimension) and weights and returns
     * its kernel. Called by {@link org.hashpack.Model} on nodes that passed {@link #check}.
     */
    public abstract Kernel bind(Node node, List<int[]> inputShapes, Map<String, Tensor> params)
            throws ShapeException;

    private static boolean matches(AttrKind kind, Object value) {
        switch (kind) {
            case INT:
                return value instanceof BigInteger;
            case BOOL:
                return value instanceof Boolean;
            case FLOAT:
                return value instanceof BigInteger || value instanceof Double;
            case PAIR:
                if (!(value instanceof List) || ((List<?>) value).size() != 2) {
                    return false;
                }
                for (Object v : (List<?>) value) {
                    if (!(v instanceof BigInteger) || ((BigInteger) v).signum() < 0) {
                        return false;
                    }
                }
                return true;
            case INTS:
                if (!(value instanceof List) || ((List<?>) value).size() > 8) {
                    return false;
                }
                for (Object v : (List<?>) value) {
                    if (!(v instanceof BigInteger)) {
                        return false;
                    }
                }
                return true;
            default:
                throw new AssertionError(kind);
        }
    }

    // ------------------------------------------------------------- attr access for bind (checked)

    /** Integer attr {@code attr} as an int; values outside the int range are a ShapeException. */
    protected static int intAttr(Node node, String attr) throws ShapeException {
        return toInt((BigInteger) node.attrs().get(attr), attr);
    }

    protected static int[] intsAttr(Node node, String attr) throws ShapeException {
        List<?> values = (List<?>) node.attrs().get(attr);
        int[] out = new int[values.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = toInt((BigInteger) values.get(i), attr);
        }
        return out;
    }

    protected static boolean boolAttr(Node node, String attr) {
        return (Boolean) node.attrs().get(attr);
    }

    /** A number attr as float32 (the rounding torch applies to e.g. BatchNorm's eps). */
    protected static float floatAttr(Node node, String attr) {
        return ((Number) node.attrs().get(attr)).floatValue();
    }

    private static int toInt(BigInteger value, String attr) throws ShapeException {
        if (value.bitLength() > 31) {
            throw new ShapeException("attr '" + attr + "' value " + value + " is out of range");
        }
        return value.intValue();
    }

    protected static String shape(int[] sampleShape) {
        StringBuilder s = new StringBuilder("[N");
        for (int d : sampleShape) {
            s.append(", ").append(d);
        }
        return s.append(']').toString();
    }
}
