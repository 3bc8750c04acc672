package org.hashpack;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns a {@code --materializable} once .tflite into a model with constant weights (on the device).
 *
 * <p>Why: LiteRT's XNNPACK delegate only accelerates constant conv filters and pre-packs only
 * constant fully-connected weights, so weights that a once model keeps in resource variables run on
 * slower kernels. A materializable once file carries, in its {@code Model.metadata}, a template (the
 * main graph with each such weight as a constant stored outside the flatbuffer, at a fixed offset)
 * and a JSON slot table. The app runs the file's {@code hashpack_weights} signature once (LiteRT
 * computes every weight, exactly as in once mode), passes the outputs here, and loads the returned
 * bytes into a second interpreter: inference then runs at the speed of the expanded export. See
 * docs/TFLITE.md and {@code exporter/tflite/materialize.py} (the same steps in Python).
 *
 * <p>Only a few fields of the TFLite flatbuffer are read, with every offset checked: a truncated
 * or hostile file gives {@link IllegalArgumentException} with a message, never an index error.
 */
public final class Materializer {
    /** Signature of a materializable once model that returns every weight, by name. */
    public static final String WEIGHTS_SIGNATURE = "hashpack_weights";
    /** Its one input (float32 [1], ignored: LiteRT's Java runSignature refuses an empty input map). */
    public static final String WEIGHTS_TRIGGER = "trigger";

    static final String TEMPLATE_METADATA = "hashpack_template";
    static final String SLOTS_METADATA = "hashpack_slots";
    private static final long MAX_MODEL_BYTES = Integer.MAX_VALUE - 8;

    private Materializer() {}

    /** One weight's place in the materialized model. */
    public static final class Slot {
        public final String variable;
        public final int offset;
        public final int size;

        Slot(String variable, int offset, int size) {
            this.variable = variable;
            this.offset = offset;
            this.size = size;
        }
    }

    /** The slots of {@code onceModel}: which signature output goes where, in bytes. */
    public static List<Slot> slots(byte[] onceModel) {
        return slots(readMetadata(onceModel));
    }

    private static List<Slot> slots(Map<String, byte[]> metadata) {
        byte[] table = metadata.get(SLOTS_METADATA);
        if (table == null || !metadata.containsKey(TEMPLATE_METADATA)) {
            throw new IllegalArgumentException(
                    "this .tflite has no hashpack materialize template (export with --materializable)");
        }
        Object parsed;
        try {
            parsed = Json.parse(new String(table, StandardCharsets.UTF_8));
        } catch (Json.SyntaxException e) {
            throw new IllegalArgumentException("slot table: " + e.getMessage(), e);
        }
        if (!(parsed instanceof List)) {
            throw new IllegalArgumentException("slot table is not a JSON list");
        }
        List<Slot> out = new ArrayList<>();
        for (Object item : (List<?>) parsed) {
            if (!(item instanceof Map)) {
                throw new IllegalArgumentException("slot table entry is not an object");
            }
            Map<?, ?> slot = (Map<?, ?>) item;
            Object variable = slot.get("variable");
            long offset = integer(slot.get("offset"), "offset");
            long size = integer(slot.get("size"), "size");
            if (!(variable instanceof String) || size % 4 != 0 || offset + size > MAX_MODEL_BYTES) {
                throw new IllegalArgumentException("bad slot " + Json.repr(slot));
            }
            out.add(new Slot((String) variable, (int) offset, (int) size));
        }
        return Collections.unmodifiableList(out);
    }

    /**
     * The materialized model: the template with every weight written at its slot.
     *
     * @param onceModel the materializable once .tflite
     * @param weights the {@code hashpack_weights} signature's outputs, by name, as float32 values
     */
    public static byte[] materialize(byte[] onceModel, Map<String, float[]> weights) {
        Map<String, byte[]> metadata = readMetadata(onceModel);
        List<Slot> slots = slots(metadata);
        byte[] template = metadata.get(TEMPLATE_METADATA);
        for (Slot slot : slots) {
            float[] value = weights.get(slot.variable);
            if (value == null) {
                throw new IllegalArgumentException("no value given for weight " + slot.variable);
            }
            if (4L * value.length != slot.size) {
                throw new IllegalArgumentException(
                        "weight " + slot.variable + ": " + value.length + " floats, its slot holds " + slot.size / 4);
            }
        }
        long end = template.length;
        // the model cannot be larger than the aligned template plus the aligned weights
        long budget = (template.length + 63L) / 64 * 64;
        for (float[] value : weights.values()) {
            budget += (4L * value.length + 63) / 64 * 64;
        }
        for (Slot slot : slots) {
            if (slot.offset < template.length || (long) slot.offset + slot.size > budget) {
                throw new IllegalArgumentException("slot " + slot.variable + " at " + slot.offset + "+" + slot.size
                        + " lies outside template (" + template.length + " bytes) + weights (" + budget + ")");
            }
            end = Math.max(end, (long) slot.offset + slot.size);
        }
        byte[] out = new byte[(int) end];
        System.arraycopy(template, 0, out, 0, template.length);
        ByteBuffer view = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
        for (Slot slot : slots) {
            view.position(slot.offset);
            view.asFloatBuffer().put(weights.get(slot.variable));
        }
        return out;
    }

    /** A .tflite model's {@code Model.metadata} entries: name to buffer bytes. */
    public static Map<String, byte[]> readMetadata(byte[] model) {
        Flat f = new Flat(model);
        int root = f.table(f.u32(0));
        int buffers = f.vector(root, 4); // Model.buffers
        int entries = f.vector(root, 6); // Model.metadata
        Map<String, byte[]> out = new LinkedHashMap<>();
        if (entries < 0) {
            return out;
        }
        for (int i = 0, n = f.length(entries); i < n; i++) {
            int entry = f.table(f.element(entries, i));
            int nameAt = f.field(entry, 0);
            String name = nameAt < 0 ? "" : f.string(nameAt + f.u32(nameAt));
            int bufferAt = f.field(entry, 1);
            long index = bufferAt < 0 ? 0 : f.u32(bufferAt);
            if (buffers < 0 || index >= f.length(buffers)) {
                throw new IllegalArgumentException("metadata " + name + ": buffer " + index + " does not exist");
            }
            int buffer = f.table(f.element(buffers, (int) index));
            int data = f.vector(buffer, 0);
            out.put(name, data < 0 ? new byte[0] : f.bytes(data + 4, f.length(data)));
        }
        return out;
    }

    private static long integer(Object value, String what) {
        if (!(value instanceof Number) || ((Number) value).doubleValue() != ((Number) value).longValue()
                || ((Number) value).longValue() < 0) {
            throw new IllegalArgumentException("slot " + what + " is not a non-negative integer: " + value);
        }
        return ((Number) value).longValue();
    }

    /** Bounds-checked reads of the little-endian flatbuffer wire format (tables, vectors, strings). */
    private static final class Flat {
        private final ByteBuffer b;

        Flat(byte[] data) {
            b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        }

        private void need(long at, long count) {
            if (at < 0 || count < 0 || at + count > b.limit()) {
                throw new IllegalArgumentException(
                        "not a valid .tflite: reading " + count + " bytes at " + at + " of " + b.limit());
            }
        }

        int u32(int at) {
            need(at, 4);
            long value = b.getInt(at) & 0xffffffffL;
            if (value > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("not a valid .tflite: offset " + value + " at " + at);
            }
            return (int) value;
        }

        int u16(int at) {
            need(at, 2);
            return b.getShort(at) & 0xffff;
        }

        /** A table's position, checking its vtable. */
        int table(int at) {
            need(at, 4);
            long vtable = (long) at - b.getInt(at);
            need(vtable, 4);
            need(vtable, u16((int) vtable));
            return at;
        }

        /** Absolute position of field {@code id} of the table at {@code table}, or -1 when absent. */
        int field(int table, int id) {
            int vtable = table - b.getInt(table);
            int size = u16(vtable);
            int slot = 4 + 2 * id;
            if (slot + 2 > size) {
                return -1;
            }
            int offset = u16(vtable + slot);
            return offset == 0 ? -1 : table + offset;
        }

        /** Position of the vector (its length word) that field {@code id} points to, or -1. */
        int vector(int table, int id) {
            int at = field(table, id);
            if (at < 0) {
                return -1;
            }
            long target = (long) at + u32(at);
            need(target, 4);
            return (int) target;
        }

        int length(int vector) {
            int n = u32(vector);
            need(vector + 4L, 0);
            return n;
        }

        /** The table an element of a vector of offsets points to. */
        int element(int vector, int i) {
            int at = vector + 4 + 4 * i;
            need(at, 4);
            long target = (long) at + u32(at);
            need(target, 4);
            return (int) target;
        }

        String string(int at) {
            int n = u32(at);
            return new String(bytes(at + 4, n), StandardCharsets.UTF_8);
        }

        byte[] bytes(int at, int count) {
            need(at, count);
            byte[] out = new byte[count];
            b.position(at);
            b.get(out);
            return out;
        }
    }
}
