package org.hashpack.demo

import ai.onnxruntime.OnnxTensor
import ai.onnxruntime.OrtEnvironment
import ai.onnxruntime.OrtSession
import java.io.ByteArrayInputStream
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.FloatBuffer
import org.hashpack.HpkFile
import org.hashpack.HpkReader
import org.hashpack.Materializer
import org.hashpack.Model
import org.hashpack.OnnxWeights
import org.tensorflow.lite.Interpreter

/**
 * One inference engine running one model file: [run] takes `batch` samples of the .hpk's input
 * shape (NCHW for images, row-major) and returns `batch` samples of its output shape. All three
 * engines use the .hpk's layout, which the ONNX and TFLite exporters keep at their interfaces.
 */
interface Engine : AutoCloseable {
    val name: String

    fun run(input: FloatArray, batch: Int): FloatArray

    override fun close() {}
}

/** Reads and checks a .hpk held in memory. */
fun readHpk(bytes: ByteArray): HpkFile = HpkReader.read(ByteArrayInputStream(bytes), "model.hpk", bytes.size.toLong())

/** hashpack-java's reference runtime: reads the .hpk, regenerates the weights, runs the graph. */
class HashpackEngine(bytes: ByteArray) : Engine {
    override val name = "hashpack-java"
    val model: Model = Model(readHpk(bytes))

    override fun run(input: FloatArray, batch: Int): FloatArray = model.run(input, batch)
}

/**
 * ONNX Runtime (CPU) on the exported .onnx. An `--weights external` export holds no weight values:
 * hashpack-java decodes them from [hpkBytes] and ORT copies them in with `addExternalInitializers`
 * (no folding of the hash at load: docs/ONNX.md, "The external mode"). Any other export runs alone
 * (a compact file's hashed weights are then regenerated and folded inside ORT).
 */
class OnnxEngine(bytes: ByteArray, private val sampleShape: IntArray, hpkBytes: ByteArray) : Engine {
    override val name = "ONNX Runtime"
    private val env = OrtEnvironment.getEnvironment()
    private val session: OrtSession = OrtSession.SessionOptions().use { options ->
        val decoded = OnnxWeights.initializers(bytes, "model.onnx", readHpk(hpkBytes)) // empty unless external
        val tensors = decoded.mapValues { (_, w) ->
            OnnxTensor.createTensor(env, FloatBuffer.wrap(w.data()), OnnxWeights.longShape(w))
        }
        try {
            options.addExternalInitializers(tensors)
            env.createSession(bytes, options)
        } finally {
            tensors.values.forEach { it.close() } // ORT copied them into the session
        }
    }
    private val inputName = session.inputNames.first()

    override fun run(input: FloatArray, batch: Int): FloatArray {
        val shape = longArrayOf(batch.toLong()) + sampleShape.map { it.toLong() }
        OnnxTensor.createTensor(env, FloatBuffer.wrap(input), shape).use { tensor ->
            session.run(mapOf(inputName to tensor)).use { result ->
                val output = result.get(0) as OnnxTensor
                val buffer = output.floatBuffer
                return FloatArray(buffer.remaining()).also { buffer.get(it) }
            }
        }
    }

    override fun close() = session.close()
}

private fun direct(bytes: ByteArray): ByteBuffer =
    ByteBuffer.allocateDirect(bytes.size).order(ByteOrder.nativeOrder()).put(bytes).also { it.rewind() }

/**
 * A `--materializable` once model with constant weights: LiteRT runs the file's init subgraph once
 * (signature `hashpack_weights`), hashpack-java's Materializer writes the weights into the template
 * the file carries, and the result loads like the expanded export (XNNPACK accelerates it).
 * Returns the file unchanged when it is not materializable.
 */
fun materializeIfPossible(bytes: ByteArray): ByteArray {
    val once = Interpreter(direct(bytes), Interpreter.Options().setNumThreads(1))
    once.use {
        if (Materializer.WEIGHTS_SIGNATURE !in it.signatureKeys) return bytes
        val names = it.getSignatureOutputs(Materializer.WEIGHTS_SIGNATURE)
        val outputs = names.associateWith { name ->
            val count = it.getOutputTensorFromSignature(name, Materializer.WEIGHTS_SIGNATURE).numElements()
            ByteBuffer.allocateDirect(4 * count).order(ByteOrder.nativeOrder())
        }
        val trigger = mapOf<String, Any>(Materializer.WEIGHTS_TRIGGER to FloatArray(1))
        it.runSignature(trigger, outputs, Materializer.WEIGHTS_SIGNATURE)
        val weights = outputs.mapValues { (_, buffer) ->
            buffer.rewind()
            FloatArray(buffer.capacity() / 4).also { values -> buffer.asFloatBuffer().get(values) }
        }
        return Materializer.materialize(bytes, weights)
    }
}

/**
 * The constant-weight model for a once file. When the file's slots carry recipes (exports of this
 * version) and the .hpk it came from is at hand, hashpack-java decodes the .hpk and fills the
 * template ([Materializer.materializeFromHpk], JUnit-tested with [Materializer.hasRecipes] in
 * MaterializeFromHpkTest; 6.5 ns per weight at ResNet-18 size against 27 for LiteRT's init,
 * docs/TFLITE.md). Otherwise LiteRT runs the init ([materializeIfPossible]).
 */
fun materialize(tflite: ByteArray, hpk: ByteArray?): ByteArray {
    if (hpk == null || !Materializer.hasRecipes(tflite)) return materializeIfPossible(tflite)
    val file = HpkReader.read(ByteArrayInputStream(hpk), "model.hpk", hpk.size.toLong())
    return Materializer.materializeFromHpk(tflite, file, Model.DEFAULT_DECODE_THREADS) // decodes as it writes
}

/**
 * LiteRT (TensorFlow Lite Interpreter, CPU) on the exported .tflite, which has a dynamic batch;
 * `hpk`: the .hpk it was exported from, if any (see [materialize]).
 */
class LiteRtEngine(bytes: ByteArray, hpk: ByteArray?, private val sampleShape: IntArray) : Engine {
    override val name = "LiteRT"
    private val modelBuffer: ByteBuffer = direct(materialize(bytes, hpk))
    private val interpreter = Interpreter(modelBuffer, Interpreter.Options().setNumThreads(1))
    private var batchAllocated = -1

    override fun run(input: FloatArray, batch: Int): FloatArray {
        if (batch != batchAllocated) {
            interpreter.resizeInput(0, intArrayOf(batch) + sampleShape)
            interpreter.allocateTensors()
            batchAllocated = batch
        }
        val inputBuffer = ByteBuffer.allocateDirect(4 * input.size).order(ByteOrder.nativeOrder())
        inputBuffer.asFloatBuffer().put(input)
        val count = interpreter.getOutputTensor(0).numElements()
        val outputBuffer = ByteBuffer.allocateDirect(4 * count).order(ByteOrder.nativeOrder())
        interpreter.run(inputBuffer, outputBuffer)
        outputBuffer.rewind()
        return FloatArray(count).also { outputBuffer.asFloatBuffer().get(it) }
    }

    override fun close() = interpreter.close()
}
