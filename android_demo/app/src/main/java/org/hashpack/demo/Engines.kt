package org.hashpack.demo

import ai.onnxruntime.OnnxTensor
import ai.onnxruntime.OrtEnvironment
import ai.onnxruntime.OrtSession
import java.io.ByteArrayInputStream
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.FloatBuffer
import org.hashpack.HpkReader
import org.hashpack.Model
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

/** hashpack-java's reference runtime: reads the .hpk, regenerates the weights, runs the graph. */
class HashpackEngine(bytes: ByteArray) : Engine {
    override val name = "hashpack-java"
    val model: Model = Model(HpkReader.read(ByteArrayInputStream(bytes), "model.hpk", bytes.size.toLong()))

    override fun run(input: FloatArray, batch: Int): FloatArray = model.run(input, batch)
}

/** ONNX Runtime (CPU) on the exported .onnx; the hashed weights are regenerated inside the graph. */
class OnnxEngine(bytes: ByteArray, private val sampleShape: IntArray) : Engine {
    override val name = "ONNX Runtime"
    private val env = OrtEnvironment.getEnvironment()
    private val session: OrtSession = OrtSession.SessionOptions().use { options -> env.createSession(bytes, options) }
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

/** LiteRT (TensorFlow Lite Interpreter, CPU) on the exported .tflite, which has a dynamic batch. */
class LiteRtEngine(bytes: ByteArray, private val sampleShape: IntArray) : Engine {
    override val name = "LiteRT"
    private val modelBuffer: ByteBuffer =
        ByteBuffer.allocateDirect(bytes.size).order(ByteOrder.nativeOrder()).put(bytes).also { it.rewind() }
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
