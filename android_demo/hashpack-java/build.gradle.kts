// hashpack-java as a plain Java library module of the Android build (the app depends on it as
// project(":hashpack-java")). No dependencies; Java 8 language level and APIs, as Android needs.
// Its JUnit suite runs with ./run_tests.sh (it needs fixtures written by the Python package).
plugins {
    `java-library`
}

java {
    sourceCompatibility = JavaVersion.VERSION_1_8
    targetCompatibility = JavaVersion.VERSION_1_8
}

sourceSets {
    main {
        java {
            exclude("org/hashpack/bench/**") // the desktop benchmark does not belong in the app
        }
    }
    test {
        java {
            setSrcDirs(emptyList<String>()) // run_tests.sh runs the tests
        }
    }
}

tasks.withType<JavaCompile>().configureEach {
    options.encoding = "UTF-8"
}
