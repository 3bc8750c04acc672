package org.hashpack.bench;

import java.io.File;
import java.util.Arrays;
import java.util.Random;
import org.hashpack.HpkFormatException;
import org.hashpack.Hp32;
import org.hashpack.Model;

/**
 * A hashed embedding table on the device, two ways, on one thread: (a) decode the whole
 * {@code [V, D]} table at load (V·D hashes and 4·V·D bytes held) and copy the looked-up rows per
 * batch; (b) keep only the K buckets and regenerate just the looked-up rows per batch (hash the
 * flat indices {@code id·D + j}), which is what {@code Model} does for a hashed table read only by
 * Embedding nodes. Both give the same bits (checked here).
 *
 * <pre>
 * java -cp build/classes org.hashpack.bench.EmbeddingBenchmark [vocab=30000] [dim=128] [compression=8]
 *     [tokens=64] [batch=1] [repeats=21]
 * java -cp build/classes org.hashpack.bench.EmbeddingBenchmark --model FILE.hpk [batch=1] [repeats=21]
 * </pre>
 *
 * The first form times the table alone (K = V·D / compression buckets, a batch of
 * {@code batch × tokens} random ids); the second times a whole packed model with an int32 input
 * ({@link Model#Model(org.hashpack.HpkFile, boolean)} with and without row gathering): load and
 * one run. Output: human lines, then {@code key=value} lines.
 */
public final class EmbeddingBenchmark {
    private EmbeddingBenchmark() {}

    public static void main(String[] args) throws HpkFormatException {
        if (args.length > 0 && "--model".equals(args[0])) {
            model(new File(args[1]), args.length > 2 ? Integer.parseInt(args[2]) : 1,
                    args.length > 3 ? Integer.parseInt(args[3]) : 21);
            return;
        }
        int vocab = args.length > 0 ? Integer.parseInt(args[0]) : 30000;
        int dim = args.length > 1 ? Integer.parseInt(args[1]) : 128;
        int compression = args.length > 2 ? Integer.parseInt(args[2]) : 8;
        int tokens = args.length > 3 ? Integer.parseInt(args[3]) : 64;
        int batch = args.length > 4 ? Integer.parseInt(args[4]) : 1;
        int repeats = args.length > 5 ? Integer.parseInt(args[5]) : 21;
        int buckets = Math.max(1, (int) ((long) vocab * dim / compression));
        float[] values = DecompressBenchmark.buckets(buckets);
        Hp32 hash = new Hp32(DecompressBenchmark.SEED, 0);
        Random random = new Random(15);
        int[] ids = new int[batch * tokens];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = random.nextInt(vocab);
        }
        float[] whole = new float[vocab * dim];
        float[] outWhole = new float[ids.length * dim];
        float[] outRows = new float[ids.length * dim];
        double[] decode = new double[repeats];
        double[] copy = new double[repeats];
        double[] gather = new double[repeats];
        double[] setup = new double[repeats];
        for (int r = -3; r < repeats; r++) { // three warm-up rounds for the JIT
            long t0 = System.nanoTime();
            hash.gatherSigned(values, whole); // (a) at load
            long t1 = System.nanoTime();
            for (int i = 0; i < ids.length; i++) { // (a) per batch
                System.arraycopy(whole, ids[i] * dim, outWhole, i * dim, dim);
            }
            long t2 = System.nanoTime();
            Hp32.Gather rows = new Hp32.Gather(hash, values); // (b) at load: the bucket bits
            long t3 = System.nanoTime();
            for (int i = 0; i < ids.length; i++) { // (b) per batch
                rows.fill((long) ids[i] * dim, outRows, i * dim, dim);
            }
            long t4 = System.nanoTime();
            if (r >= 0) {
                decode[r] = (t1 - t0) / 1e9;
                copy[r] = (t2 - t1) / 1e9;
                setup[r] = (t3 - t2) / 1e9;
                gather[r] = (t4 - t3) / 1e9;
            }
        }
        for (int i = 0; i < outRows.length; i++) {
            if (Float.floatToRawIntBits(outRows[i]) != Float.floatToRawIntBits(outWhole[i])) {
                throw new AssertionError("row gather differs from the whole table at " + i);
            }
        }
        System.out.printf("hashed Embedding [%d, %d] from %,d buckets (1/%d), a batch of %d x %d ids:%n", vocab, dim,
                buckets, compression, batch, tokens);
        System.out.printf("  whole table: decode %.2f ms at load (%.1f MB held), then %.4f ms per batch%n",
                median(decode) * 1e3, 4.0 * vocab * dim / 1e6, median(copy) * 1e3);
        System.out.printf(
                "  rows only:   %.2f ms at load (%.1f MB of buckets, copied once as bits), then %.4f ms per batch%n",
                median(setup) * 1e3, 4.0 * buckets / 1e6, median(gather) * 1e3);
        System.out.println("vocab=" + vocab);
        System.out.println("dim=" + dim);
        System.out.println("buckets=" + buckets);
        System.out.println("ids=" + ids.length);
        System.out.println("whole_decode_seconds=" + median(decode));
        System.out.println("whole_batch_seconds=" + median(copy));
        System.out.println("rows_setup_seconds=" + median(setup));
        System.out.println("rows_batch_seconds=" + median(gather));
        System.out.println("java=" + System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
    }

    private static void model(File file, int batch, int repeats) throws HpkFormatException {
        org.hashpack.HpkFile hpk = org.hashpack.HpkReader.read(file);
        if (!hpk.input().isIds()) {
            throw new IllegalArgumentException(file + " does not take int32 token ids");
        }
        int sample = (int) hpk.input().sampleSize();
        int[] ids = new int[batch * sample];
        float[] golden = hpk.hasGolden() ? hpk.goldenInputs() : new float[] {0};
        for (int i = 0; i < ids.length; i++) {
            ids[i] = (int) golden[i % golden.length];
        }
        for (boolean rows : new boolean[] {false, true}) {
            double[] load = new double[repeats];
            double[] run = new double[repeats];
            float[] out = null;
            for (int r = -3; r < repeats; r++) {
                long t0 = System.nanoTime();
                Model model = new Model(hpk, rows);
                long t1 = System.nanoTime();
                out = model.run(ids, batch);
                long t2 = System.nanoTime();
                if (r >= 0) {
                    load[r] = (t1 - t0) / 1e9;
                    run[r] = (t2 - t1) / 1e9;
                }
            }
            String mode = rows ? "rows" : "whole";
            System.out.printf("%s: %s tables: load %.2f ms, run (batch %d) %.3f ms, output[0] %s%n", file.getName(),
                    mode, median(load) * 1e3, batch, median(run) * 1e3, out[0]);
            System.out.println(mode + "_load_seconds=" + median(load));
            System.out.println(mode + "_run_seconds=" + median(run));
        }
    }

    private static double median(double[] seconds) {
        double[] sorted = seconds.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length / 2];
    }
}
