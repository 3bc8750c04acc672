import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

// Bump these together with README.md.
val onnxRuntimeVersion = "1.24.2"
val liteRtVersion = "1.4.1" // the Interpreter API (org.tensorflow.lite.Interpreter)

android {
    namespace = "org.hashpack.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "org.hashpack.demo"
        minSdk = 24
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    androidResources {
        // Keep the models stored, not deflated, in the APK: they are read whole at start-up.
        noCompress += listOf("hpk", "onnx", "tflite")
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    implementation(project(":hashpack-java"))
    implementation("com.microsoft.onnxruntime:onnxruntime-android:$onnxRuntimeVersion")
    implementation("com.google.ai.edge.litert:litert:$liteRtVersion")
}
