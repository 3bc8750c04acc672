// The hashpack Android demo: the app, and hashpack-java as a source dependency (a Gradle module
// built from ../hashpack-java/src/main/java). See README.md for how to build it.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "hashpack-android-demo"
include(":app", ":hashpack-java")
