package org.hashpack;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Command line: what an app hands ONNX Runtime for an {@code --weights external} export, written to
 * files, so the Python tests can feed Java's weights to Python's onnxruntime
 * (tests/test_onnx_external_java.py) and benchmarks can time the decode.
 *
 * <pre>
 * java -cp build/classes org.hashpack.DumpOnnxWeights [--repeats N] MODEL.hpk MODEL.onnx OUT_DIR
 * </pre>
 *
 * <p>Writes {@code OUT_DIR/<i>.f32} (initializer i's float32 values, little-endian, row-major) and
 * prints one JSON line: {@code {"initializers": [{"name", "shape", "file"}, ...], "decode_seconds"}}
 * (read and validate the .hpk, then {@link OnnxWeights#initializers(byte[], String, HpkFile)},
 * which decodes the listed params: what an app does; the first time in this JVM, so class loading
 * and JIT warm-up included) and, with {@code --repeats N > 0}, {@code warm_decode_seconds}: the
 * fastest of N more, or
 * {@code {"error": "<source>: <problem>"}} with exit status 1 for a bad file; 2 on bad usage.
 */
public final class DumpOnnxWeights {
    private DumpOnnxWeights() {}

    /** Reads both files and returns {@link OnnxWeights#initializers(byte[], String, HpkFile)}. */
    private static Map<String, Tensor> decode(String hpk, String onnx) throws IOException {
        byte[] bytes = Files.readAllBytes(new File(onnx).toPath());
        return OnnxWeights.initializers(bytes, onnx, HpkReader.read(new File(hpk)));
    }

    public static void main(String[] args) throws IOException {
        int repeats = 0;
        if (args.length == 5 && "--repeats".equals(args[0])) {
            repeats = Integer.parseInt(args[1]);
            args = java.util.Arrays.copyOfRange(args, 2, 5);
        }
        if (args.length != 3 || repeats < 0) {
            System.err.println("usage: DumpOnnxWeights [--repeats N] MODEL.hpk MODEL.onnx OUT_DIR");
            System.exit(2);
        }
        Map<String, Tensor> weights;
        double seconds;
        double warm = Double.POSITIVE_INFINITY;
        try {
            long start = System.nanoTime();
            weights = decode(args[0], args[1]);
            seconds = (System.nanoTime() - start) / 1e9;
            for (int i = 0; i < repeats; i++) {
                start = System.nanoTime();
                weights = decode(args[0], args[1]);
                warm = Math.min(warm, (System.nanoTime() - start) / 1e9);
            }
        } catch (IOException e) { // HpkFormatException, or the .onnx could not be read
            Map<String, Object> error = new LinkedHashMap<>();
            error.put("error", e.getMessage());
            System.out.println(Json.write(error));
            System.exit(1);
            return;
        }
        List<Object> listed = new ArrayList<>();
        int index = 0;
        for (Map.Entry<String, Tensor> entry : weights.entrySet()) {
            String name = index++ + ".f32";
            float[] data = entry.getValue().data();
            ByteBuffer bytes = ByteBuffer.allocate(4 * data.length).order(ByteOrder.LITTLE_ENDIAN);
            bytes.asFloatBuffer().put(data);
            try (OutputStream out = new FileOutputStream(new File(args[2], name))) {
                out.write(bytes.array());
            }
            List<Object> shape = new ArrayList<>();
            for (int d : entry.getValue().shape()) {
                shape.add(d);
            }
            Map<String, Object> item = new LinkedHashMap<>();
            item.put("name", entry.getKey());
            item.put("shape", shape);
            item.put("file", name);
            listed.add(item);
        }
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("initializers", listed);
        report.put("decode_seconds", seconds);
        if (repeats > 0) {
            report.put("warm_decode_seconds", warm);
        }
        System.out.println(Json.write(report));
    }
}
