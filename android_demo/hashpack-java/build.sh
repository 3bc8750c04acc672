#!/usr/bin/env bash
# Compile hashpack-java's main sources (Java 8 language level, no dependencies) into build/classes.
# Used by run_tests.sh and benchmarks/java_decompress.py. Needs a JDK (javac) on PATH or JAVA_HOME.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="$HERE/build"

JAVAC="${JAVA_HOME:+$JAVA_HOME/bin/}javac"
if ! command -v "$JAVAC" >/dev/null 2>&1; then
    echo "build.sh: javac not found: install a JDK >= 9 (e.g. apt-get install openjdk-17-jdk-headless)" >&2
    exit 3
fi

rm -rf "$BUILD/classes"
mkdir -p "$BUILD/classes"
find "$HERE/src/main/java" -name '*.java' | sort > "$BUILD/main-sources.txt"
# --release 8: the library must run on Android (Java 8 APIs and language level).
# -J-XX:TieredStopAtLevel=1: the JIT tiers javac would use are not worth their start-up cost here.
"$JAVAC" -J-XX:TieredStopAtLevel=1 --release 8 -encoding UTF-8 -Xlint:all,-options -Werror \
    -d "$BUILD/classes" @"$BUILD/main-sources.txt"
