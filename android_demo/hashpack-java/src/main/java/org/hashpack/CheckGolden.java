package org.hashpack;

import java.io.File;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Command line: loads each {@code .hpk} file, runs its golden inputs and compares with the golden
 * outputs PyTorch recorded at pack time ({@link Model#checkGolden}), printing one JSON object per
 * file on its own line. What the Python tests call to run this runtime on any file
 * (tests/java_runner.py).
 *
 * <pre>
 * java -cp build/classes org.hashpack.CheckGolden [--atol 1e-4] [--rtol 1e-4] [--repeats 0] FILE...
 * </pre>
 *
 * <p>Fields: {@code file}, {@code passed}, and either {@code error} (a one-line reason: a format
 * error, no golden outputs, a failed run) or {@code samples}, {@code max_abs_error} (null if NaN),
 * {@code mismatches}, {@code first_mismatch}, {@code max_abs_reference} (the largest |golden output|,
 * the scale to read the error against); timings {@code load_seconds} (read, validate, decode
 * weights, bind kernels), {@code check_seconds} (the first golden run, JIT warm-up included) and,
 * with {@code --repeats N > 0}, {@code run_seconds}: the fastest of N further golden runs. Exit
 * status 0 if every file passed, 1 if any did not, 2 on bad usage. The defaults are the tolerances
 * of {@code hashpack validate}.
 */
public final class CheckGolden {
    static final double DEFAULT_ATOL = 1e-4;
    static final double DEFAULT_RTOL = 1e-4;

    private CheckGolden() {}

    public static void main(String[] args) {
        double atol = DEFAULT_ATOL;
        double rtol = DEFAULT_RTOL;
        int repeats = 0;
        List<String> files = new ArrayList<>();
        try {
            for (int i = 0; i < args.length; i++) {
                String arg = args[i];
                if ("--atol".equals(arg) || "--rtol".equals(arg) || "--repeats".equals(arg)) {
                    if (i + 1 == args.length) {
                        usage(arg + " needs a value");
                        return;
                    }
                    String value = args[++i];
                    if ("--repeats".equals(arg)) {
                        repeats = Integer.parseInt(value);
                    } else if ("--atol".equals(arg)) {
                        atol = Double.parseDouble(value);
                    } else {
                        rtol = Double.parseDouble(value);
                    }
                } else if (arg.startsWith("--")) {
                    usage("unknown option " + arg);
                    return;
                } else {
                    files.add(arg);
                }
            }
        } catch (NumberFormatException e) {
            usage("not a number: " + e.getMessage());
            return;
        }
        if (files.isEmpty() || !(atol >= 0) || !(rtol >= 0) || atol + rtol == 0 || repeats < 0) {
            usage(files.isEmpty() ? "no files given" : "tolerances must be >= 0 and not both 0; repeats >= 0");
            return;
        }
        boolean allPassed = true;
        for (String path : files) {
            Map<String, Object> result = check(path, atol, rtol, repeats);
            allPassed &= (Boolean) result.get("passed");
            System.out.println(Json.write(result));
            System.out.flush();
        }
        System.exit(allPassed ? 0 : 1);
    }

    private static void usage(String problem) {
        System.err.println("CheckGolden: " + problem);
        System.err.println("usage: java org.hashpack.CheckGolden [--atol A] [--rtol R] [--repeats N] FILE...");
        System.exit(2);
    }

    /** The JSON result for one file; never throws for a bad file or a failing run. */
    static Map<String, Object> check(String path, double atol, double rtol, int repeats) {
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("file", path);
        result.put("passed", false);
        long start = System.nanoTime();
        Model model;
        try {
            model = Model.load(new File(path));
        } catch (HpkFormatException e) {
            result.put("error", e.getMessage());
            return result;
        }
        result.put("load_seconds", seconds(System.nanoTime() - start));
        if (!model.hasGolden()) {
            result.put("error", path + ": the file has no golden outputs to check against");
            return result;
        }
        try {
            start = System.nanoTime();
            Model.GoldenCheck check = model.checkGolden(atol, rtol);
            result.put("check_seconds", seconds(System.nanoTime() - start));
            result.put("passed", check.passed());
            result.put("samples", check.samples());
            result.put("max_abs_error", Double.isNaN(check.maxAbsError()) ? null : check.maxAbsError());
            result.put("mismatches", check.mismatches());
            result.put("first_mismatch", check.firstMismatch());
            result.put("max_abs_reference", maxAbs(model.file().goldenOutputs()));
            result.put("atol", atol);
            result.put("rtol", rtol);
            if (repeats > 0) {
                float[] inputs = model.file().goldenInputs();
                long best = Long.MAX_VALUE;
                for (int r = 0; r < repeats; r++) {
                    start = System.nanoTime();
                    model.run(inputs, check.samples());
                    best = Math.min(best, System.nanoTime() - start);
                }
                result.put("run_seconds", seconds(best));
            }
        } catch (IdsOutOfRangeException e) { // golden token ids outside a table: the message names the node
            result.put("passed", false);
            result.put("error", e.getMessage());
        } catch (RuntimeException | OutOfMemoryError e) {
            result.put("passed", false);
            result.put("error", path + ": the run failed: " + e);
        }
        return result;
    }

    /** The largest |value| (the golden outputs are finite: the reader checked). */
    private static double maxAbs(float[] values) {
        double max = 0;
        for (float v : values) {
            max = Math.max(max, Math.abs(v));
        }
        return max;
    }

    private static double seconds(long nanos) {
        return Math.round(nanos / 1e3) / 1e6;
    }
}
