package org.hashpack;

import static org.hashpack.TestSupport.assertFormatError;
import static org.hashpack.TestSupport.ints;
import static org.hashpack.TestSupport.list;
import static org.hashpack.TestSupport.obj;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

/**
 * Hostile and broken files (docs/FORMAT.md §6): each must raise HpkFormatException with a message
 * naming the source and the problem, never another exception. Most cases edit the mlp fixture and
 * re-sign it (fresh SHA-256) so that the check under test, not the checksum, is what fires.
 */
public class CorruptFileTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private static byte[] mlpBytes() {
        return TestSupport.readBytes(new File(TestSupport.fixtures(), "mlp.hpk"));
    }

    private static TestHpk mlp() {
        return TestHpk.parse(mlpBytes());
    }

    private static void rejects(final byte[] file, String... fragments) {
        HpkFormatException e = assertFormatError(() -> HpkReader.parse(file, "bad.hpk"), fragments);
        assertEquals("bad.hpk", e.source());
        assertTrue(e.getMessage(), e.getMessage().startsWith("bad.hpk: "));
    }

    private static void rejects(TestHpk hpk, String... fragments) {
        rejects(hpk.bytes(), fragments);
    }

    private static byte[] withHeaderLength(byte[] file, long n) {
        byte[] out = file.clone();
        ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).putLong(0, n);
        return out;
    }

    private static byte[] rawFile(String header, byte[] data) {
        return TestHpk.assemble(header.getBytes(StandardCharsets.UTF_8), data);
    }

    @Test
    public void fixtureItselfIsValid() throws Exception {
        HpkFile f = HpkReader.parse(mlpBytes(), "mlp.hpk");
        assertEquals(6, f.params().size());
        HpkReader.parse(mlp().bytes(), "resigned.hpk"); // our re-serialisation is faithful
    }

    // ------------------------------------------------------------------ §6.1 the length prefix

    @Test
    public void truncatedBelowEightBytes() {
        rejects(new byte[0], "truncated: 0 bytes");
        rejects(Arrays.copyOf(mlpBytes(), 7), "truncated: 7 bytes");
    }

    @Test
    public void headerLengthAboveLimit() {
        rejects(withHeaderLength(mlpBytes(), 16L * 1024 * 1024 + 1), "header length 16777217 exceeds");
        rejects(withHeaderLength(mlpBytes(), -1L), "header length 18446744073709551615 exceeds");
        rejects(withHeaderLength(mlpBytes(), Long.MIN_VALUE), "header length 9223372036854775808");
    }

    @Test
    public void headerLongerThanFile() {
        byte[] file = mlpBytes();
        rejects(withHeaderLength(file, file.length), "truncated: header claims");
        rejects(Arrays.copyOf(file, 100), "truncated: header claims");
    }

    @Test
    public void truncatedDataAndTrailingBytes() {
        byte[] file = mlpBytes();
        rejects(Arrays.copyOf(file, file.length - 4), "tensors cover", "(truncated file)");
        rejects(Arrays.copyOf(file, file.length + 8), "tensors cover", "(trailing bytes)");
    }

    // ------------------------------------------------------------------------ §6.2 the header

    @Test
    public void headerIsNotJson() {
        rejects(rawFile("{not json", new byte[0]), "header is not valid UTF-8 JSON");
        rejects(rawFile("", new byte[0]), "header is not valid UTF-8 JSON");
        rejects(rawFile("{\"a\": NaN}", new byte[0]), "header is not valid UTF-8 JSON");
    }

    @Test
    public void headerIsNotUtf8() {
        byte[] header = "{\"__metadata__\": {\"x\": \"\u00ff\u00ff\"}}".getBytes(StandardCharsets.ISO_8859_1);
        rejects(TestHpk.assemble(header, new byte[0]), "invalid UTF-8");
        // an encoded surrogate (CESU-8) is not UTF-8 either
        rejects(TestHpk.assemble(new byte[] {'"', (byte) 0xED, (byte) 0xA0, (byte) 0x80, '"'}, new byte[0]),
                "invalid UTF-8");
    }

    @Test
    public void headerIsNotAnObject() {
        rejects(rawFile("[1, 2]", new byte[0]), "header is not a JSON object");
        rejects(rawFile("\"x\"", new byte[0]), "header is not a JSON object");
    }

    @Test
    public void deeplyNestedHeader() {
        char[] deep = new char[200_000];
        Arrays.fill(deep, '[');
        rejects(rawFile(new String(deep), new byte[0]), "nesting deeper than");
    }

    @Test
    public void metadataMissingOrNotStrings() {
        rejects(rawFile("{}", new byte[0]), "no __metadata__ object of strings");
        rejects(rawFile("{\"__metadata__\": [\"a\"]}", new byte[0]), "no __metadata__ object of strings");
        rejects(rawFile("{\"__metadata__\": {\"hashpack\": 1}}", new byte[0]), "no __metadata__ object of strings");
        rejects(rawFile("{\"__metadata__\": {\"hashpack\": \"{}\"}}", new byte[0]), "not a hashpack file",
                "hashpack.sha256");
        rejects(rawFile("{\"__metadata__\": {}}", new byte[0]), "not a hashpack file");
    }

    // ------------------------------------------------------------------- §6.3 the tensor table

    @Test
    public void badDtype() {
        TestHpk hpk = mlp();
        hpk.entry("spaces/fc1").put("dtype", "F64");
        rejects(hpk, "tensor 'spaces/fc1': unsupported dtype \"F64\"");
        hpk.entry("spaces/fc1").put("dtype", list("F32"));
        rejects(hpk, "unsupported dtype");
        hpk.entry("spaces/fc1").remove("dtype");
        rejects(hpk, "unsupported dtype null");
    }

    @Test
    public void badShapes() {
        TestHpk hpk = mlp();
        hpk.entry("spaces/fc1").put("shape", ints(-2438));
        rejects(hpk, "tensor 'spaces/fc1': shape [-2438] is not a list of at most 8 integers in [0, 2147483647]");
        hpk.entry("spaces/fc1").put("shape", ints(1, 1, 1, 1, 1, 1, 1, 1, 2438));
        rejects(hpk, "is not a list of at most 8");
        hpk.entry("spaces/fc1").put("shape", list(2438.0));
        rejects(hpk, "is not a list");
        hpk.entry("spaces/fc1").put("shape", "2438");
        rejects(hpk, "is not a list");
    }

    @Test
    public void badOffsets() {
        TestHpk hpk = mlp();
        hpk.entry("spaces/fc1").put("data_offsets", ints(6408));
        rejects(hpk, "data_offsets [6408] is not [begin, end]");
        hpk.entry("spaces/fc1").put("data_offsets", ints(-4, 9748));
        rejects(hpk, "is not [begin, end]");
        hpk.entry("spaces/fc1").put("data_offsets", ints(6408, 16164));
        rejects(hpk, "shape [2438] of F32 needs 9752 bytes, offsets give 9756");
    }

    @Test
    public void offsetsThatLieAboutTheFile() {
        // A consistent entry (shape x itemsize = end - begin) that claims far more than the file has.
        TestHpk hpk = mlp();
        hpk.entry("spaces/fc2").put("shape", ints(1 << 30));
        hpk.entry("spaces/fc2").put("data_offsets", list(16160L, 16160L + (4L << 30)));
        rejects(hpk, "tensors cover 4294983456 bytes but the data buffer has 31208 (truncated file)");
        // Dimensions whose product overflows 64 bits: exact arithmetic, no wrap-around to "small".
        hpk = mlp();
        BigInteger max = BigInteger.valueOf(Integer.MAX_VALUE);
        hpk.entry("spaces/fc2").put("shape", list(max, max, max, max, max, max, max, max));
        hpk.entry("spaces/fc2").put("data_offsets", list(BigInteger.valueOf(16160),
                max.pow(8).shiftLeft(2).add(BigInteger.valueOf(16160))));
        rejects(hpk, "tensors cover", "(truncated file)");
        hpk.entry("spaces/fc2").put("shape", list(BigInteger.ONE.shiftLeft(31)));
        rejects(hpk, "shape [2147483648] is not a list of at most 8 integers in [0, 2147483647]");
        // A shape whose product wraps to 0 mod 2^64 must not pass as an empty tensor.
        hpk = mlp();
        hpk.entry("spaces/fc2").put("shape", ints(1 << 30, 1 << 30, 16)); // 2^64 elements
        hpk.entry("spaces/fc2").put("data_offsets", ints(16160, 16160));
        rejects(hpk, "needs 73786976294838206464 bytes, offsets give 0");
    }

    @Test
    public void overlapAndGap() {
        TestHpk hpk = mlp();
        hpk.entry("spaces/fc2").put("data_offsets", ints(16156, 31204));
        rejects(hpk, "tensor 'spaces/fc2' starts at byte 16156 and overlaps the previous tensor (expected 16160)");
        hpk = mlp();
        hpk.entry("spaces/fc2").put("data_offsets", ints(16164, 31212));
        rejects(hpk, "starts at byte 16164 and leaves a gap before it");
    }

    @Test
    public void badTensorNames() {
        for (String name : new String[] {"a b", "", "caf\u00e9", "a\n", "x\u0000"}) {
            TestHpk hpk = mlp();
            Object entry = hpk.table.remove("params/fc3.bias");
            hpk.table.put(name, entry);
            rejects(hpk, "is not allowed");
        }
        TestHpk hpk = mlp();
        char[] longName = new char[257];
        Arrays.fill(longName, 'a');
        hpk.table.put(new String(longName), hpk.table.remove("params/fc3.bias"));
        rejects(hpk, "is not allowed (ASCII [A-Za-z0-9_./-], <= 256 chars)");
        hpk = mlp();
        hpk.table.put("params/fc3.bias", "not an object");
        rejects(hpk, "tensor 'params/fc3.bias': entry is not an object");
    }

    // --------------------------------------------------------- §6.4 the metadata document itself

    @Test
    public void metadataIsNotJson() {
        rejects(mlp().bytes("{\"format\": "), "metadata is not valid JSON");
        rejects(mlp().bytes("{\"format\": NaN}"), "metadata is not valid JSON");
        rejects(mlp().bytes("[]"), "metadata is not a JSON object");
    }

    @Test
    public void wrongFormatVersionOrHash() {
        TestHpk hpk = mlp();
        hpk.meta.put("format", "safetensors");
        rejects(hpk, "format is \"safetensors\", expected 'hashpack'");
        hpk = mlp();
        hpk.meta.put("version", BigInteger.valueOf(3));
        rejects(hpk, "unsupported format version 3 (this reader knows 1, 2: update hashpack)");
        hpk.meta.put("version", "1");
        rejects(hpk, "unsupported format version \"1\"");
        hpk.meta.remove("version");
        rejects(hpk, "unsupported format version null");
        hpk = mlp();
        hpk.meta.put("hash", "murmur3");
        rejects(hpk, "unsupported hash \"murmur3\" (this reader knows 'hp32')");
    }

    // ------------------------------------------------------------------------- §6.5 the checksum

    @Test
    public void checksumMismatch() {
        byte[] file = mlpBytes();
        file[file.length - 1] ^= 1; // one bit of the data buffer
        rejects(file, "checksum mismatch");
        TestHpk hpk = mlp();
        hpk.checksumOverride = TestHpk.sha256(Json.write(hpk.meta), hpk.data);
        hpk.meta.put("producer", "edited after signing");
        rejects(hpk, "checksum mismatch");
        hpk = mlp();
        hpk.checksumOverride = "not hex";
        rejects(hpk, "checksum mismatch");
    }

    @Test
    public void stringsWithoutUtf8Form() {
        // A lone surrogate escape has no UTF-8 bytes: the checksum input is undefined, the file is bad.
        // The hashpack string itself holds U+D800 (escaped in the header JSON): it has no UTF-8 bytes.
        String text = Json.write(mlp().meta).replace("\"producer\":\"hashpack 0.1.0\"", "\"producer\":\"\uD800\"");
        assertTrue(text.contains("\uD800"));
        rejects(mlp().bytes(text), "header is not valid UTF-8 JSON (unpaired surrogate \\ud800");
        // A value inside the metadata document spells a lone surrogate with an escape.
        text = Json.write(mlp().meta).replace("\"producer\":\"hashpack 0.1.0\"", "\"producer\":\"\\udc00x\"");
        rejects(mlp().bytes(text), "metadata is not valid JSON (unpaired surrogate \\udc00");
    }

    // ------------------------------------------------------------------- §6.6 semantic checks

    @Test
    public void inputsAndOutputs() {
        TestHpk hpk = mlp();
        hpk.meta.put("inputs", list());
        rejects(hpk, "metadata: inputs must list exactly one tensor in version 1, found 0");
        hpk = mlp();
        hpk.meta.put("outputs", "fc3");
        rejects(hpk, "metadata: field 'outputs' has the wrong type (string, expected array)");
        hpk = mlp();
        hpk.meta.put("inputs", list(obj("name", "x", "shape", ints(1, 64))));
        rejects(hpk, "shape [1,64] must start with null");
        hpk.meta.put("inputs", list(obj("name", "x", "shape", list(null, 0))));
        rejects(hpk, "dimension 0 of shape [null,0] is not an integer in [1, 2147483647]");
        hpk.meta.put("inputs", list(obj("shape", list(null, 64))));
        rejects(hpk, "inputs: missing field 'name'");
    }

    @Test
    public void unknownScheme() {
        TestHpk hpk = mlp();
        hpk.param("fc1.weight").put("scheme", "freshnets");
        rejects(hpk, "param 'fc1.weight': unknown compression scheme 'freshnets' (known: dense, hashed, fresh, "
                + "funhash, fsnet)");
    }

    @Test
    public void unknownOp() {
        TestHpk hpk = mlp();
        hpk.node(1).put("op", "Mish");
        rejects(hpk, "node 'relu' (Mish): unknown op 'Mish'");
    }

    @Test
    public void hugeDeclaredShapes() {
        TestHpk hpk = mlp();
        hpk.param("fc1.weight").put("shape", ints(65536, 65536));
        rejects(hpk, "param 'fc1.weight': 4294967296 elements exceed the 2^31-1 limit");
        hpk.param("fc1.weight").put("shape", ints(2147483647, 2147483647, 2147483647, 2147483647, 2147483647));
        rejects(hpk, "elements exceed the 2^31-1 limit");
        hpk.param("fc1.weight").put("shape", list(new BigInteger("100000000000000000000"), 1));
        rejects(hpk, "dimension 100000000000000000000");
        // more than 2^16 x K virtual weights from one space (K = 2438)
        hpk.param("fc1.weight").put("shape", ints(2438 * 65536 + 1));
        rejects(hpk, "159776769 virtual elements from 2438 stored values exceeds the 65536x expansion limit");
    }

    @Test
    public void totalVirtualParametersAboveLimit() {
        TestHpk hpk = mlp();
        hpk.space("fc1").put("size", BigInteger.valueOf(2438));
        // each within its own limits, together above 2^28
        for (int i = 0; i < 3; i++) {
            hpk.section("params").put("extra" + i, obj("scheme", "hashed", "shape", ints(100_000_000),
                    "space", "fc1", "seed", i));
        }
        rejects(hpk, "virtual parameters exceed the 268435456 limit at param 'extra");
    }

    @Test
    public void badSeeds() {
        TestHpk hpk = mlp();
        hpk.param("fc1.weight").put("seed", BigInteger.ONE.shiftLeft(32));
        rejects(hpk, "param 'fc1.weight': seed 4294967296 is not a 32-bit unsigned integer");
        hpk.param("fc1.weight").put("seed", BigInteger.valueOf(-1));
        rejects(hpk, "seed -1 is not a 32-bit unsigned integer");
        hpk.param("fc1.weight").put("seed", 1.0);
        rejects(hpk, "field 'seed' has the wrong type (number, expected integer)");
        hpk.param("fc1.weight").put("seed", Boolean.TRUE);
        rejects(hpk, "field 'seed' has the wrong type (boolean");
        hpk.param("fc1.weight").remove("seed");
        rejects(hpk, "param 'fc1.weight': missing field 'seed'");
    }

    @Test
    public void badSpaces() {
        TestHpk hpk = mlp();
        hpk.space("fc1").put("size", BigInteger.ZERO);
        rejects(hpk, "space 'fc1': bucket count 0 outside [1, 2^30]");
        hpk.space("fc1").put("size", BigInteger.valueOf((1L << 30) + 1));
        rejects(hpk, "bucket count 1073741825 outside");
        hpk = mlp();
        hpk.space("fc1").put("size", BigInteger.valueOf(2437));
        rejects(hpk, "space 'fc1': tensor 'spaces/fc1' is F32[2438], metadata declares F32[2437]");
        hpk = mlp();
        hpk.space("fc1").put("dtype", "bfloat16");
        rejects(hpk, "unsupported bucket dtype \"bfloat16\"");
        hpk = mlp();
        hpk.space("fc1").put("dtype", "float16");
        rejects(hpk, "is F32[2438], metadata declares F16[2438]");
        hpk = mlp();
        hpk.param("fc1.weight").put("space", "nowhere");
        rejects(hpk, "param 'fc1.weight': unknown space 'nowhere'");
    }

    @Test
    public void badInt8Scale() {
        TestHpk hpk = mlp();
        hpk.setTensor("spaces/fc1", "I8", new long[] {2438}, new byte[2438]);
        hpk.space("fc1").put("dtype", "int8");
        rejects(hpk, "space 'fc1': missing field 'scale'");
        for (Object scale : new Object[] {0.0, -0.5, 0.1, 1e300, BigInteger.ZERO, new BigInteger("1" + new String(new char[400]).replace('\0', '0'))}) {
            hpk.space("fc1").put("scale", scale);
            rejects(hpk, "is not a positive finite float32");
        }
        hpk.space("fc1").put("scale", "0.5");
        rejects(hpk, "field 'scale' has the wrong type");
        hpk.space("fc1").put("scale", 0.125);
        try { // valid now
            assertEquals(0.125f, hpk.read().spaces().get("fc1").scale(), 0f);
        } catch (HpkFormatException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    public void nonFiniteValues() {
        TestHpk hpk = mlp();
        byte[] raw = hpk.tensorBytes("spaces/fc1");
        ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).putFloat(400, Float.NaN);
        hpk.setTensor("spaces/fc1", "F32", new long[] {2438}, raw);
        rejects(hpk, "space 'fc1': tensor 'spaces/fc1' holds NaN or infinite values");
        hpk = mlp();
        raw = hpk.tensorBytes("params/fc3.weight");
        ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).putFloat(0, Float.NEGATIVE_INFINITY);
        hpk.setTensor("params/fc3.weight", "F32", new long[] {10, 100}, raw);
        rejects(hpk, "param 'fc3.weight': tensor 'params/fc3.weight' holds NaN or infinite values");
        hpk = mlp();
        raw = hpk.tensorBytes("golden/outputs");
        ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).putFloat(4, Float.POSITIVE_INFINITY);
        hpk.setTensor("golden/outputs", "F32", new long[] {8, 10}, raw);
        rejects(hpk, "golden outputs: tensor 'golden/outputs' holds NaN or infinite values");
        // float16 infinity (0x7C00) in a float16 space
        hpk = mlp();
        short[] halves = new short[2438];
        halves[17] = (short) 0x7C00;
        hpk.setTensor("spaces/fc1", "F16", new long[] {2438}, TestHpk.f16(halves));
        hpk.space("fc1").put("dtype", "float16");
        rejects(hpk, "holds NaN or infinite values");
    }

    @Test
    public void tensorReferences() {
        TestHpk hpk = mlp();
        hpk.setTensor("unused/extra", "F32", new long[] {1}, TestHpk.f32(1f));
        rejects(hpk, "tensor 'unused/extra' is not referenced by the metadata");
        hpk = mlp();
        hpk.param("fc3.bias").put("tensor", "params/fc3.weight");
        rejects(hpk, "param 'fc3.bias': tensor 'params/fc3.weight' is F32[10, 100], metadata declares F32[10]");
        hpk = mlp();
        hpk.section("params").put("fc3.weight2", obj("scheme", "dense", "shape", ints(10, 100),
                "tensor", "params/fc3.weight"));
        rejects(hpk, "tensor 'params/fc3.weight' is used twice");
        hpk = mlp();
        hpk.removeTensor("params/fc3.bias");
        rejects(hpk, "param 'fc3.bias': tensor \"params/fc3.bias\" is missing from the file");
    }

    @Test
    public void graphStructure() {
        TestHpk hpk = mlp();
        hpk.node(2).put("inputs", list("nowhere"));
        rejects(hpk, "node 'fc2' (Linear): input \"nowhere\" is not produced by an earlier node");
        hpk = mlp();
        hpk.node(0).put("inputs", list("relu")); // produced later: not topological
        rejects(hpk, "node 'fc1' (Linear): input \"relu\" is not produced by an earlier node");
        hpk = mlp();
        hpk.node(3).put("outputs", list("fc1"));
        rejects(hpk, "node 'relu_1' (Relu): output 'fc1' is produced twice");
        hpk = mlp();
        hpk.node(3).put("outputs", list("x"));
        rejects(hpk, "output 'x' is produced twice");
        hpk = mlp();
        hpk.node(3).put("outputs", list("a", "b"));
        rejects(hpk, "must have exactly one output name");
        hpk = mlp();
        ((List<?>) hpk.meta.get("nodes")).remove(4);
        rejects(hpk, "graph output 'fc3' is not produced by any node");
        hpk = mlp();
        hpk.meta.put("nodes", list());
        rejects(hpk, "graph output 'fc3' is not produced by any node");
        hpk = mlp();
        hpk.node(0).remove("attrs");
        rejects(hpk, "node 'fc1' (Linear): missing field 'attrs'");
        hpk = mlp();
        hpk.nodes().set(0, "Linear");
        rejects(hpk, "node #0: is not a JSON object (string)");
    }

    @Test
    public void nodeSignatures() {
        TestHpk hpk = mlp();
        hpk.node(0).put("params", obj("weight", "fc1.weight", "bias", "fc1.bias", "scale", "fc1.bias"));
        rejects(hpk, "node 'fc1' (Linear): unexpected param 'scale'");
        hpk.node(0).put("params", obj("bias", "fc1.bias"));
        rejects(hpk, "missing param 'weight'");
        hpk.node(0).put("params", obj("weight", "fc1.bias"));
        rejects(hpk, "param 'weight' has shape [300], expected rank 2");
        hpk.node(0).put("params", obj("weight", "nothing"));
        rejects(hpk, "param 'weight' refers to unknown param \"nothing\"");
        hpk = mlp();
        hpk.node(1).put("attrs", obj("inplace", true));
        rejects(hpk, "node 'relu' (Relu): unexpected attr 'inplace'");
        hpk = mlp();
        hpk.node(1).put("inputs", list("fc1", "x"));
        rejects(hpk, "node 'relu' (Relu): takes 1 input(s), got 2");
        hpk = mlp();
        hpk.node(0).put("params", obj("weight", "fc1.weight", "bias", "fc2.bias"));
        rejects(hpk, "node 'fc1' (Linear): bias shape [100] does not fit 300 output features");
    }

    @Test
    public void convAttrs() throws Exception {
        TestHpk lenet = TestHpk.parse(TestSupport.readBytes(new File(TestSupport.fixtures(), "lenet5.hpk")));
        int conv = -1;
        for (int i = 0; i < lenet.nodes().size(); i++) {
            if ("Conv2d".equals(lenet.node(i).get("op"))) {
                conv = i;
                break;
            }
        }
        Map<String, Object> attrs = lenet.attrs(conv);
        attrs.put("groups", BigInteger.valueOf(4));
        rejects(lenet, "groups=4 does not divide 6 output channels");
        attrs.put("groups", BigInteger.ONE);
        attrs.put("stride", ints(1));
        rejects(lenet, "attr 'stride' = [1] is not a valid pair");
        attrs.put("stride", ints(1, -1));
        rejects(lenet, "is not a valid pair");
        attrs.put("stride", ints(0, 1));
        rejects(lenet, "stride [0, 1] and dilation [1, 1] must be positive");
        attrs.put("stride", ints(1, 1));
        attrs.remove("dilation");
        rejects(lenet, "missing attr 'dilation'");
        attrs.put("dilation", ints(1, 1));
        attrs.put("padding", list(BigInteger.ONE.shiftLeft(31), BigInteger.ONE));
        rejects(lenet, "attr 'padding' = [2147483648, 1] is not a valid pair");
        attrs.put("padding", ints(1 << 20, 1 << 20));
        rejects(lenet, "node 'c1' (Conv2d): the padded input would hold 4398163952400 elements per sample (limit 268435456)");
        attrs.put("padding", ints(2, 2));
        assertEquals(10, new Model(lenet.read()).outputShape()[0]);
    }

    @Test
    public void shapeMismatchesFoundByInference() {
        TestHpk hpk = mlp();
        hpk.meta.put("inputs", list(obj("name", "x", "shape", list(null, 65))));
        rejects(hpk, "node 'fc1' (Linear): input [N, 65] does not fit weight [300, 64]");
        hpk = mlp();
        hpk.meta.put("outputs", list(obj("name", "relu_1", "shape", list(null, 10))));
        // the golden outputs [8, 10] fit the declaration, the graph does not
        rejects(hpk, "outputs: 'relu_1' is declared [N, 10] but the graph computes [N, 100]");
    }

    @Test
    public void declaredOutputShapeMustMatchGraph() {
        TestHpk hpk = mlp();
        hpk.meta.remove("golden");
        hpk.removeTensor("golden/inputs");
        hpk.removeTensor("golden/outputs");
        hpk.meta.put("outputs", list(obj("name", "fc3", "shape", list(null, 11))));
        rejects(hpk, "outputs: 'fc3' is declared [N, 11] but the graph computes [N, 10]");
    }

    @Test
    public void goldenEntries() {
        TestHpk hpk = mlp();
        hpk.meta.put("golden", obj("inputs", "golden/inputs"));
        rejects(hpk, "golden: missing field 'outputs'");
        hpk = mlp();
        hpk.meta.put("golden", obj("inputs", "golden/none", "outputs", "golden/outputs"));
        rejects(hpk, "golden: inputs tensor 'golden/none' is missing or empty");
        hpk = mlp();
        hpk.setTensor("golden/outputs", "F32", new long[] {7, 10}, new byte[280]);
        rejects(hpk, "golden outputs: tensor 'golden/outputs' is F32[7, 10], metadata declares F32[8, 10]");
        hpk = mlp();
        hpk.meta.put("golden", null); // null means "no golden", but its tensors are then unreferenced
        rejects(hpk, "tensor 'golden/inputs' is not referenced by the metadata");
    }

    private static TestHpk generated() {
        return TestHpk.parse(TestSupport.readBytes(new File(TestSupport.fixtures(), "lenet5_generated_golden.hpk")));
    }

    private static Map<String, Object> generatedSpec(TestHpk hpk) {
        @SuppressWarnings("unchecked")
        Map<String, Object> spec = (Map<String, Object>) hpk.meta.get("golden");
        return spec;
    }

    @Test
    public void generatedGoldenIsChecked() throws Exception {
        TestHpk hpk = generated();
        assertEquals(BigInteger.valueOf(2), hpk.meta.get("version"));
        HpkFile file = HpkReader.parse(hpk.bytes(), "generated.hpk");
        assertTrue(file.goldenGenerated());
        hpk.meta.put("version", BigInteger.ONE); // version 1 has no generated inputs
        rejects(hpk, "golden: missing field 'inputs'");
        hpk = generated();
        generatedSpec(hpk).put("generator", "hp32-normal");
        rejects(hpk, "golden: unknown input generator \"hp32-normal\"");
        hpk = generated();
        generatedSpec(hpk).remove("generator");
        rejects(hpk, "golden: missing field 'generator'");
        hpk = generated();
        generatedSpec(hpk).put("seed", BigInteger.ONE.shiftLeft(32));
        rejects(hpk, "golden: seed 4294967296 is not in [0, 2^32)");
        hpk = generated();
        generatedSpec(hpk).put("seed", BigInteger.valueOf(-1));
        rejects(hpk, "golden: seed -1 is not in [0, 2^32)");
        hpk = generated();
        generatedSpec(hpk).put("seed", 1.5);
        rejects(hpk, "golden: field 'seed' has the wrong type");
        for (BigInteger count : new BigInteger[] {BigInteger.ZERO, BigInteger.valueOf(1025),
                BigInteger.ONE.shiftLeft(62), BigInteger.ONE.shiftLeft(70)}) {
            hpk = generated();
            generatedSpec(hpk).put("count", count);
            rejects(hpk, "golden: " + count + " generated samples", "exceed the limits");
        }
        hpk = generated();
        generatedSpec(hpk).put("count", BigInteger.valueOf(2));
        rejects(hpk, "golden outputs: tensor 'golden/outputs'", "metadata declares F32[2, 10]");
        hpk = generated();
        generatedSpec(hpk).put("outputs", "golden/none");
        rejects(hpk, "golden outputs: tensor \"golden/none\" is missing from the file");
    }

    @Test
    public void duplicateKeys() {
        byte[] file = mlpBytes();
        String text = new String(file, StandardCharsets.ISO_8859_1);
        // the header's "spaces/fc1" entry twice (same length, so the prefix stays right)
        String twice = text.replace("\"spaces/fc2\":", "\"spaces/fc1\":");
        rejects(twice.getBytes(StandardCharsets.ISO_8859_1), "header is not valid UTF-8 JSON (duplicate key");
        String meta = Json.write(mlp().meta).replace("\"format\":\"hashpack\"",
                "\"format\":\"hashpack\",\"format\":\"hashpack\"");
        rejects(mlp().bytes(meta), "metadata is not valid JSON (duplicate key \"format\"");
    }

    @Test
    public void versionMustBeTheInteger1() {
        for (Object version : new Object[] {1.0, Boolean.TRUE, "1", list(1)}) {
            TestHpk hpk = mlp();
            hpk.meta.put("version", version);
            rejects(hpk, "unsupported format version");
        }
    }

    @Test
    public void producerMustBeAString() {
        TestHpk hpk = mlp();
        hpk.meta.put("producer", BigInteger.ONE);
        rejects(hpk, "metadata: producer has the wrong type (integer)");
        hpk.meta.remove("producer");
        try {
            assertEquals("", hpk.read().producer()); // optional
        } catch (HpkFormatException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    public void int8ScaleMayNotOverflow() {
        TestHpk hpk = mlp();
        byte[] q = new byte[2438];
        q[5] = 127;
        hpk.setTensor("spaces/fc1", "I8", new long[] {2438}, q);
        hpk.space("fc1").put("dtype", "int8");
        hpk.space("fc1").put("scale", (double) (Float.MAX_VALUE / 2));
        rejects(hpk, "space 'fc1': int8 scale", "makes bucket values overflow float32");
    }

    @Test
    public void sectionsMustBeObjects() {
        TestHpk hpk = mlp();
        hpk.section("spaces").put("fc1", list(1));
        rejects(hpk, "space 'fc1': is not a JSON object (array)");
        hpk = mlp();
        hpk.section("params").put("fc1.bias", "hashed");
        rejects(hpk, "param 'fc1.bias': is not a JSON object (string)");
        hpk = mlp();
        hpk.meta.put("golden", BigInteger.ONE);
        rejects(hpk, "golden: is not a JSON object (integer)");
    }

    // ------------------------------------------------------------------------- I/O entry points

    @Test
    public void fileEntryPoints() throws IOException {
        File dir = tmp.newFolder("a.hpk");
        assertFormatError(() -> HpkReader.read(dir), "a.hpk: is a directory");
        File missing = new File(tmp.getRoot(), "missing.hpk");
        assertFormatError(() -> HpkReader.read(missing), "missing.hpk: cannot be read");
        File bad = tmp.newFile("bad.hpk");
        try (FileOutputStream out = new FileOutputStream(bad)) {
            out.write(new byte[] {1, 2, 3});
        }
        assertFormatError(() -> Model.load(bad), "bad.hpk: truncated: 3 bytes");
        byte[] file = mlpBytes();
        assertFormatError(() -> HpkReader.read(new ByteArrayInputStream(file), "asset", 1000),
                "asset: file exceeds the 1000-byte limit");
        assertEquals(6, HpkReader.read(new ByteArrayInputStream(file), "asset", file.length).params().size());
        // a stream one byte over the limit, read in small pieces, is still refused; the exact length is not
        assertFormatError(() -> HpkReader.read(new Trickle(file), "asset", file.length - 1),
                "asset: file exceeds the " + (file.length - 1) + "-byte limit");
        assertEquals(6, HpkReader.read(new Trickle(file), "asset", file.length).params().size());
    }

    /** A stream larger than the first buffer (64 KiB) grows it and reads the same file as the File path. */
    @Test
    public void streamsLargerThanTheFirstBuffer() throws IOException {
        File big = new File(TestSupport.fixtures(), "tv_mobilenet_v3_small.hpk");
        byte[] bytes = TestSupport.readBytes(big);
        assertTrue(bytes.length > 4 * 65536);
        HpkFile fromFile = HpkReader.read(big);
        HpkFile fromStream = HpkReader.read(new Trickle(bytes), "asset", bytes.length);
        assertEquals(fromFile.params().keySet(), fromStream.params().keySet());
        assertEquals(fromFile.virtualParameterCount(), fromStream.virtualParameterCount());
        assertFormatError(() -> HpkReader.read(new Trickle(bytes), "asset", bytes.length - 1),
                "asset: file exceeds the " + (bytes.length - 1) + "-byte limit");
        // a truncated file through the File path (read to its end, then refused by the checks)
        File shorter = tmp.newFile("shorter.hpk");
        try (FileOutputStream out = new FileOutputStream(shorter)) {
            out.write(bytes, 0, 1000);
        }
        assertFormatError(() -> HpkReader.read(shorter), "shorter.hpk: truncated");
    }

    /** Returns at most 7 bytes per read (as a slow or chunked asset stream may). */
    private static final class Trickle extends java.io.InputStream {
        private final byte[] data;
        private int pos;

        Trickle(byte[] data) {
            this.data = data;
        }

        @Override
        public int read() {
            return pos < data.length ? data[pos++] & 0xff : -1;
        }

        @Override
        public int read(byte[] b, int off, int len) {
            if (len == 0) {
                return 0;
            }
            if (pos >= data.length) {
                return -1;
            }
            int n = Math.min(Math.min(len, 7), data.length - pos);
            System.arraycopy(data, pos, b, off, n);
            pos += n;
            return n;
        }
    }
}
