package org.hashpack.ops;

import java.math.BigDecimal;
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
 * A graph op of docs/FORMAT.md §5, in three steps:
 *
 * <ol>
 *   <li>{@link #check}: the node fits the op's signature (inputs, param slots with ranks, attrs
 *       with kinds) and the op's static rules; run by the reader on every node;
 *   <li>{@link #infer}: the output shape from the input shapes, and the work per sample; run by the
 *       reader along the graph, so a graph the kernels could not run is a format error at read time;
 *   <li>{@link #kernel}: the computation, bound to shapes and weights (only on inferred nodes).
 * </ol>
 *
 * Shapes are per sample: the batch dimension is left out ({@code [N, C, H, W]} is {@code {C, H, W}}).
 * Axis attributes count the batch dimension, as in torch.
 */
public abstract class Op {
    /** How an attr value is typed (the parsed JSON types of {@code org.hashpack.Json}). */
    public enum AttrKind {
        /** an integer in the int32 range */
        INT,
        /** true or false */
        BOOL,
        /** a number that is finite as a float32 */
        FLOAT,
        /** a list of two non-negative int32 integers */
        PAIR,
        /** a list of at most 8 int32 integers */
        INTS
    }

    /** The output shape of a node and the operations it costs per sample. */
    public static final class Inference {
        final int[] shape;
        final long work;

        Inference(int[] shape, double work) {
            this.shape = shape;
            this.work = (long) Math.min(work, Long.MAX_VALUE);
        }

        /** The output shape without the batch dimension. */
        public int[] shape() {
            return shape.clone();
        }

        /** Multiply-adds (or comparable operations) per sample. */
        public long work() {
            return work;
        }
    }

    private static final BigDecimal FLOAT32_MAX = new BigDecimal(Float.MAX_VALUE);
    /** A param slot whose rank the op's own {@link #validate} decides (LayerNorm, Constant). */
    protected static final int ANY_RANK = -1;

    private final String name;
    private final int numInputs; // -1: one or more
    private final Map<String, Integer> params = new LinkedHashMap<>();
    private final Map<String, Integer> optionalParams = new LinkedHashMap<>();
    private final Map<String, AttrKind> attrs = new LinkedHashMap<>();
    private final Map<String, AttrKind> optionalAttrs = new LinkedHashMap<>();
    private boolean idsInput;

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

    /** An attr a node may leave out (added to an op after files without it were written). */
    protected final void optionalAttr(String attr, AttrKind kind) {
        optionalAttrs.put(attr, kind);
    }

    /**
     * Marks the first input as int32 token ids (Embedding): the reader then requires it to be the
     * int32 graph input, and the kernel implements {@link IdsKernel}.
     */
    protected final void idsInput() {
        idsInput = true;
    }

    /** True if the first input is int32 token ids (docs/FORMAT.md §5, int32 values). */
    public final boolean takesIds() {
        return idsInput;
    }

    /** The op name of the metadata. */
    public final String name() {
        return name;
    }

    /**
     * An error message if {@code node} does not fit this op's signature (with {@code params} the
     * node's slots resolved to params), else null.
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
            if (slot.getValue() != ANY_RANK && param.rank() != slot.getValue()) {
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
                return "attr '" + attr.getKey() + "' = " + clip(String.valueOf(value)) + " is not a valid "
                        + attr.getValue().name().toLowerCase(java.util.Locale.ROOT);
            }
        }
        for (Map.Entry<String, AttrKind> attr : optionalAttrs.entrySet()) {
            Object value = node.attrs().get(attr.getKey());
            if (node.attrs().containsKey(attr.getKey()) && !matches(attr.getValue(), value)) {
                return "attr '" + attr.getKey() + "' = " + clip(String.valueOf(value)) + " is not a valid "
                        + attr.getValue().name().toLowerCase(java.util.Locale.ROOT);
            }
        }
        TreeSet<String> extra = new TreeSet<>(node.attrs().keySet());
        extra.removeAll(attrs.keySet());
        extra.removeAll(optionalAttrs.keySet());
        if (!extra.isEmpty()) {
            return "unexpected attr '" + clip(extra.first()) + "'";
        }
        return validate(node, params);
    }

    /** Op-specific rules on attrs and params alone (after the signature check); a message or null. */
    protected String validate(Node node, Map<String, Param> params) {
        return null;
    }

    /**
     * The output shape of a checked node given its input shapes, and its work per sample.
     *
     * @throws ShapeException if the inputs do not fit the node, or a value would exceed
     *     {@link Limits#MAX_ELEMENTS}
     */
    public abstract Inference infer(Node node, List<int[]> inputs, Map<String, Param> params) throws ShapeException;

    /**
     * The kernel of a node that passed {@link #check} and {@link #infer} with these input shapes.
     * {@code params} holds the decoded weights by slot.
     */
    public abstract Kernel kernel(Node node, List<int[]> inputs, Map<String, Tensor> params);

    private static boolean matches(AttrKind kind, Object value) {
        switch (kind) {
            case INT:
                return isInt32(value);
            case BOOL:
                return value instanceof Boolean;
            case FLOAT:
                if (value instanceof BigInteger) {
                    return new BigDecimal((BigInteger) value).abs().compareTo(FLOAT32_MAX) <= 0;
                }
                return value instanceof Double && Math.abs((Double) value) <= Float.MAX_VALUE;
            case PAIR:
                if (!(value instanceof List) || ((List<?>) value).size() != 2) {
                    return false;
                }
                for (Object v : (List<?>) value) {
                    if (!isInt32(v) || ((BigInteger) v).signum() < 0) {
                        return false;
                    }
                }
                return true;
            case INTS:
                if (!(value instanceof List) || ((List<?>) value).size() > 8) {
                    return false;
                }
                for (Object v : (List<?>) value) {
                    if (!isInt32(v)) {
                        return false;
                    }
                }
                return true;
            default:
                throw new AssertionError(kind);
        }
    }

    private static boolean isInt32(Object value) {
        return value instanceof BigInteger && ((BigInteger) value).bitLength() <= 31;
    }

    private static String clip(String text) {
        return text.length() <= 80 ? text : text.substring(0, 80) + "...";
    }

    // ---------------------------------------------------- attr access (kinds checked by check())

    protected static int intAttr(Node node, String attr) {
        return ((BigInteger) node.attrs().get(attr)).intValue();
    }

    protected static int[] intsAttr(Node node, String attr) {
        List<?> values = (List<?>) node.attrs().get(attr);
        int[] out = new int[values.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = ((BigInteger) values.get(i)).intValue();
        }
        return out;
    }

    protected static boolean boolAttr(Node node, String attr) {
        return (Boolean) node.attrs().get(attr);
    }

    /** An optional bool attr, {@code absent} if the node leaves it out. */
    protected static boolean boolAttr(Node node, String attr, boolean absent) {
        Object value = node.attrs().get(attr);
        return value == null ? absent : (Boolean) value;
    }

    /** A number attr as float32 (the rounding torch applies to e.g. BatchNorm's eps). */
    protected static float floatAttr(Node node, String attr) {
        return ((Number) node.attrs().get(attr)).floatValue();
    }

    /** A shape for messages, batch first: {@code [N, 3, 32, 32]}. */
    public static String show(int[] sampleShape) {
        StringBuilder s = new StringBuilder("[N");
        for (int d : sampleShape) {
            s.append(", ").append(d);
        }
        return s.append(']').toString();
    }

    /** Elements per sample of a shape (a double: exact up to 2^53, never overflows). */
    public static double numel(int[] sampleShape) {
        double n = 1;
        for (int d : sampleShape) {
            n *= d;
        }
        return n;
    }

    /** Raises a ShapeException if a value or temporary would exceed {@link Limits#MAX_ELEMENTS}. */
    protected static void checkElements(double count, String what) throws ShapeException {
        if (count > Limits.MAX_ELEMENTS) {
            throw new ShapeException(String.format("%s would hold %.0f elements per sample (limit %d)", what, count,
                    Limits.MAX_ELEMENTS));
        }
    }

    /** Requires a rank (batch included) among {@code ranks}. */
    protected static void requireRank(int[] sampleShape, String what, int... ranks) throws ShapeException {
        int rank = sampleShape.length + 1;
        StringBuilder expected = new StringBuilder();
        for (int r : ranks) {
            if (r == rank) {
                return;
            }
            expected.append(expected.length() > 0 ? " or " : "").append(r);
        }
        throw new ShapeException(what + " " + show(sampleShape) + " has rank " + rank + ", expected " + expected);
    }
}
