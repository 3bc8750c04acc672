package org.hashpack.bench;

import java.io.File;
import java.util.Arrays;
import org.hashpack.HpkFile;
import org.hashpack.HpkReader;
import org.hashpack.Model;

/**
 * Time to decode every weight of a real {@code .hpk} (e.g. ResNet-18) into a {@link Model}, per
 * decode-thread count: the median of {@code repeats} constructions after one warm-up.
 *
 * <pre>
 * java -cp build/classes org.hashpack.bench.ModelDecodeBenchmark model.hpk [threads=1,2] [repeats=5]
 * </pre>
 * Output: {@code threads=T median_ms=M weights=N ns_per_weight=X}, one line per thread count.
 */
public final class ModelDecodeBenchmark {
    private ModelDecodeBenchmark() {}

    public static void main(String[] args) throws Exception {
        HpkFile file = HpkReader.read(new File(args[0]));
        String[] threadList = (args.length > 1 ? args[1] : "1,2").split(",");
        int repeats = args.length > 2 ? Integer.parseInt(args[2]) : 5;
        long weights = file.virtualParameterCount();
        for (String text : threadList) {
            int threads = Integer.parseInt(text.trim());
            new Model(file, threads); // warm-up (JIT)
            double[] ms = new double[repeats];
            for (int r = 0; r < repeats; r++) {
                long start = System.nanoTime();
                new Model(file, threads);
                ms[r] = (System.nanoTime() - start) / 1e6;
            }
            Arrays.sort(ms);
            double median = ms[repeats / 2];
            System.out.printf("threads=%d median_ms=%.1f weights=%d ns_per_weight=%.2f%n", threads, median, weights,
                    median * 1e6 / weights);
        }
    }
}
