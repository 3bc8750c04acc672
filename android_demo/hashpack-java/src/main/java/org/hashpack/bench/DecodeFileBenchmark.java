package org.hashpack.bench;

import java.io.File;
import java.util.Arrays;
import org.hashpack.HpkFile;
import org.hashpack.HpkReader;
import org.hashpack.Model;

/**
 * Time to decode every param of a .hpk file with hashpack-java ({@code new Model(file)}: each param
 * through its scheme), after the file was read and validated once. Used by
 * benchmarks/decode_per_scheme.py to compare schemes.
 *
 * <pre>
 * java -cp build/classes org.hashpack.bench.DecodeFileBenchmark FILE.hpk [repeats=7]
 * </pre>
 *
 * Output: {@code key=value} lines: {@code first_ms} (the first decode, JIT cold), {@code median_ms}
 * (the median of the repeats that follow), {@code read_ms} (reading and validating the file).
 */
public final class DecodeFileBenchmark {
    private DecodeFileBenchmark() {}

    public static void main(String[] args) throws Exception {
        File file = new File(args[0]);
        int repeats = args.length > 1 ? Integer.parseInt(args[1]) : 7;
        long start = System.nanoTime();
        HpkFile hpk = HpkReader.read(file);
        double readMs = (System.nanoTime() - start) / 1e6;
        start = System.nanoTime();
        Model model = new Model(hpk);
        double firstMs = (System.nanoTime() - start) / 1e6;
        double[] times = new double[repeats];
        long sink = model.weights().size();
        for (int r = 0; r < repeats; r++) {
            start = System.nanoTime();
            sink += new Model(hpk).weights().size();
            times[r] = (System.nanoTime() - start) / 1e6;
        }
        Arrays.sort(times);
        System.out.println("read_ms=" + readMs);
        System.out.println("first_ms=" + firstMs);
        System.out.println("median_ms=" + times[repeats / 2]);
        System.out.println("params=" + sink / (repeats + 1));
    }
}
