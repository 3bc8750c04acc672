package org.hashpack.demo

import android.app.Activity
import android.graphics.Typeface
import android.os.Bundle
import android.widget.ScrollView
import android.widget.TextView
import java.io.FileNotFoundException
import java.util.Locale
import kotlin.concurrent.thread
import kotlin.math.abs
import org.hashpack.HpkFormatException

/**
 * Runs one model three ways and shows the results side by side:
 *
 * - hashpack-java on `model.hpk` (the compressed file: bucket values and seeds only),
 * - ONNX Runtime on `model.onnx` and LiteRT on `model.tflite` (exported from the same .hpk with
 *   `hashpack export`).
 *
 * The test input is the first golden input recorded in the .hpk at pack time. For each engine the
 * screen shows the predicted class, the median latency of one sample, the file size, and whether
 * the engine reproduces the golden outputs (PyTorch's, recorded at pack time) for all golden
 * samples.
 */
class MainActivity : Activity() {
    private lateinit var report: TextView

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        report = TextView(this).apply {
            typeface = Typeface.MONOSPACE
            textSize = 12f
            setPadding(32, 32, 32, 32)
            text = "running…"
        }
        setContentView(ScrollView(this).apply { addView(report) })
        thread(name = "hashpack-demo") {
            val text = try {
                runDemo()
            } catch (e: Exception) {
                "failed: $e"
            }
            runOnUiThread { report.text = text }
        }
    }

    private fun asset(name: String): ByteArray? =
        try {
            assets.open(name).use { it.readBytes() }
        } catch (e: FileNotFoundException) {
            null
        }

    private fun runDemo(): String {
        val out = StringBuilder()
        val hpkBytes = asset("model.hpk")
            ?: return "model.hpk is missing from the app's assets: see android_demo/README.md (Assets)."

        val reference = try {
            timed { HashpackEngine(hpkBytes) }
        } catch (e: HpkFormatException) {
            return "model.hpk is not a valid .hpk file:\n${e.message}"
        }
        val model = reference.value.model
        val file = model.file()
        if (!file.hasGolden()) {
            return "model.hpk has no golden inputs/outputs: pack it with golden > 0."
        }
        val sample = model.inputShape()
        val sampleSize = sample.fold(1) { a, b -> a * b }
        val outputSize = model.outputShape().fold(1) { a, b -> a * b }
        val goldenCount = file.goldenCount()
        val goldenInputs = file.goldenInputs()
        val goldenOutputs = file.goldenOutputs()
        val testInput = goldenInputs.copyOfRange(0, sampleSize)
        val expectedClass = argmax(goldenOutputs.copyOfRange(0, outputSize))

        out.appendLine("model.hpk  ${file.producer()}, ${file.nodes().size} nodes, ${file.params().size} params")
        out.appendLine("input      [1, ${sample.joinToString(", ")}] = golden sample 0 of $goldenCount")
        out.appendLine("golden     class $expectedClass (PyTorch at pack time)")
        out.appendLine()
        out.appendLine(String.format(Locale.US, "%-14s %10s %9s %11s %6s  %s", "engine", "file", "load ms",
            "latency ms", "class", "golden outputs"))

        val rows = listOf(
            Row("model.hpk", hpkBytes) { reference }, // loaded above: its load time includes decompression
            Row("model.onnx", asset("model.onnx")) { timed { OnnxEngine(it, sample, hpkBytes) } },
            Row("model.tflite", asset("model.tflite")) { timed { LiteRtEngine(it, hpkBytes, sample) } },
        )
        for (row in rows) {
            val bytes = row.bytes
            if (bytes == null) {
                out.appendLine(String.format(Locale.US, "%-14s %s", row.asset, "not in assets (see README: Assets)"))
                continue
            }
            try {
                val loaded = row.open(bytes)
                loaded.value.use { engine ->
                    val prediction = argmax(engine.run(testInput, 1))
                    val latencyMs = medianMillis { engine.run(testInput, 1) }
                    val check = compare(engine.run(goldenInputs, goldenCount), goldenOutputs)
                    out.appendLine(String.format(Locale.US, "%-14s %10s %9.1f %11.3f %6d  %s", engine.name,
                        size(bytes.size), loaded.millis, latencyMs, prediction, check))
                }
            } catch (e: Exception) {
                out.appendLine(String.format(Locale.US, "%-14s failed: %s", row.asset, e.message ?: e.toString()))
            }
        }
        out.appendLine()
        out.appendLine("latency: median of $RUNS runs of one sample after $WARMUP warm-up runs, one thread")
        out.appendLine(String.format(Locale.US, "golden: |ours - golden| <= %.0e + %.0e * |golden| everywhere", ATOL, RTOL))
        return out.toString()
    }

    /** An asset and how to open an engine on its bytes (timed). */
    private class Row(val asset: String, val bytes: ByteArray?, val open: (ByteArray) -> Timed<Engine>)

    /** A value and how long it took to make (for engines: load, parse, prepare). */
    private class Timed<out T>(val value: T, val millis: Double)

    private fun <T> timed(block: () -> T): Timed<T> {
        val start = System.nanoTime()
        val value = block()
        return Timed(value, (System.nanoTime() - start) / 1e6)
    }

    private fun medianMillis(block: () -> Unit): Double {
        repeat(WARMUP) { block() }
        val times = DoubleArray(RUNS) {
            val start = System.nanoTime()
            block()
            (System.nanoTime() - start) / 1e6
        }
        times.sort()
        return times[RUNS / 2]
    }

    /** numpy.allclose-style comparison; a summary string for the table. */
    private fun compare(actual: FloatArray, expected: FloatArray): String {
        if (actual.size != expected.size) {
            return "DIFFER (${actual.size} values, expected ${expected.size})"
        }
        var worst = 0.0
        var bad = 0
        for (i in expected.indices) {
            val diff = abs(actual[i].toDouble() - expected[i].toDouble())
            if (diff.isNaN() || diff > ATOL + RTOL * abs(expected[i].toDouble())) bad++
            if (!diff.isNaN() && diff > worst) worst = diff
        }
        return if (bad == 0) {
            String.format(Locale.US, "match (max err %.1e)", worst)
        } else {
            String.format(Locale.US, "DIFFER in %d values (max err %.1e)", bad, worst)
        }
    }

    private fun argmax(values: FloatArray): Int = values.indices.maxByOrNull { values[it] } ?: -1

    private fun size(bytes: Int): String =
        if (bytes < 1024 * 1024) String.format(Locale.US, "%.1f KB", bytes / 1024.0)
        else String.format(Locale.US, "%.2f MB", bytes / 1024.0 / 1024.0)

    private companion object {
        const val WARMUP = 5
        const val RUNS = 31
        const val ATOL = 1e-4
        const val RTOL = 1e-3
    }
}
