package org.hashpack.bench;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.util.Arrays;
import org.hashpack.HpkFile;
import org.hashpack.HpkReader;
import org.hashpack.Materializer;

/**
 * The device path of a materializable once .tflite without LiteRT's init subgraph: read the
 * {@code .hpk} (and the once file), then decode every param and fill the template with it
 * ({@link Materializer#materializeFromHpk(byte[], HpkFile, int)}, by thread count). Median of {@code repeats}
 * after at least {@link #WARMUP} warm-ups and {@link #WARMUP_SECONDS} of them (the JIT compiles in the
 * background: on a busy machine a few runs are not enough), per thread count (benchmarks/scale.py and
 * benchmarks/java_materialize.py run it at ResNet-18 and MobileNetV2 size).
 *
 * <pre>
 * java -cp build/classes org.hashpack.bench.MaterializeFromHpkBenchmark model.hpk model.once.tflite \
 *     [threads=1,2] [repeats=5] [out.tflite]
 * </pre>
 * Output, one line per thread count: {@code threads=T weights=N read_ms=R materialize_ms=M
 * total_ms=S ns_per_weight=X cpu_ms=C} (materialize: decode and fill; cpu: the calling thread's CPU
 * time for the whole run, which other jobs on a shared machine do not inflate); with {@code out.tflite}
 * the last model made is written there (scale.py compares it with Python's bytes).
 */
public final class MaterializeFromHpkBenchmark {
    /** Untimed runs before each thread count's timed ones: the JIT compiles reader, decoder and fill. */
    static final int WARMUP = 5;
    /** ... and untimed runs until this much time has passed. */
    static final double WARMUP_SECONDS = 2.0;

    private static final java.lang.management.ThreadMXBean THREADS =
            java.lang.management.ManagementFactory.getThreadMXBean();

    private MaterializeFromHpkBenchmark() {}

    public static void main(String[] args) throws IOException {
        if (args.length < 2) {
            System.err.println("usage: MaterializeFromHpkBenchmark model.hpk once.tflite [threads=1,2] [repeats=5] [out.tflite]");
            System.exit(2);
        }
        File hpk = new File(args[0]);
        File once = new File(args[1]);
        String[] threadList = (args.length > 2 ? args[2] : "1,2").split(",");
        int repeats = args.length > 3 ? Integer.parseInt(args[3]) : 5;
        byte[] last = null;
        for (String text : threadList) {
            int threads = Integer.parseInt(text.trim());
            double[] read = new double[repeats];
            double[] fill = new double[repeats];
            double[] total = new double[repeats];
            double[] cpu = new double[repeats];
            long weights = 0;
            long warmupEnd = System.nanoTime() + (long) (WARMUP_SECONDS * 1e9);
            for (int r = -WARMUP; r < repeats; r++) { // r < 0: warm-up
                if (r == 0 && System.nanoTime() < warmupEnd) {
                    r = -1; // one more warm-up
                }
                last = null;
                System.gc(); // the previous model's garbage is not this run's cost
                long cpuStart = THREADS.getCurrentThreadCpuTime();
                long start = System.nanoTime();
                HpkFile file = HpkReader.read(hpk);
                byte[] onceBytes = Files.readAllBytes(once.toPath());
                long readEnd = System.nanoTime();
                last = Materializer.materializeFromHpk(onceBytes, file, threads);
                long end = System.nanoTime();
                long cpuEnd = THREADS.getCurrentThreadCpuTime();
                weights = file.virtualParameterCount();
                if (r >= 0) {
                    read[r] = (readEnd - start) / 1e6;
                    fill[r] = (end - readEnd) / 1e6;
                    total[r] = (end - start) / 1e6;
                    cpu[r] = (cpuEnd - cpuStart) / 1e6;
                }
            }
            double median = median(total);
            System.out.printf(java.util.Locale.ROOT,
                    "threads=%d weights=%d read_ms=%.1f materialize_ms=%.1f total_ms=%.1f ns_per_weight=%.2f"
                            + " cpu_ms=%.1f%n",
                    threads, weights, median(read), median(fill), median, median * 1e6 / weights, median(cpu));
        }
        if (args.length > 4 && last != null) {
            try (OutputStream out = new FileOutputStream(args[4])) {
                out.write(last);
            }
        }
    }

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length / 2];
    }
}
