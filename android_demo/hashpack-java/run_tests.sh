#!/usr/bin/env bash
# Build hashpack-java, write the Python-side fixtures, and run the JUnit 4 suite.
#
#   android_demo/hashpack-java/run_tests.sh
#
# Exits non-zero if anything fails. Environment overrides:
#   PYTHON          the interpreter with hashpack[torch] installed (default: the repo's .venv, else python3)
#   JUNIT_JAR       default /usr/share/java/junit4.jar      (Debian: apt-get install junit4)
#   HAMCREST_JAR    default /usr/share/java/hamcrest-core.jar (installed with junit4)
#   JAVA_HOME       optional; javac/java are taken from PATH otherwise
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BUILD="$HERE/build"

JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
JAVAC="${JAVA_HOME:+$JAVA_HOME/bin/}javac"
JUNIT_JAR="${JUNIT_JAR:-/usr/share/java/junit4.jar}"
HAMCREST_JAR="${HAMCREST_JAR:-/usr/share/java/hamcrest-core.jar}"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$REPO/.venv/bin/python" ]]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
fi

for tool in "$JAVAC" "$JAVA"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "run_tests.sh: $tool not found: install a JDK >= 9 (e.g. apt-get install openjdk-17-jdk-headless)" >&2
        exit 3
    fi
done
for jar in "$JUNIT_JAR" "$HAMCREST_JAR"; do
    if [[ ! -f "$jar" ]]; then
        echo "run_tests.sh: $jar not found: apt-get install junit4 (or set JUNIT_JAR / HAMCREST_JAR)" >&2
        exit 3
    fi
done

echo "== compiling main sources"
"$HERE/build.sh"

echo "== compiling tests"
rm -rf "$BUILD/test-classes" "$BUILD/fixtures"
mkdir -p "$BUILD/test-classes"
find "$HERE/src/test/java" -name '*.java' | sort > "$BUILD/test-sources.txt"
"$JAVAC" -J-XX:TieredStopAtLevel=1 --release 8 -encoding UTF-8 -Xlint:all,-options -Werror -d "$BUILD/test-classes" \
    -cp "$BUILD/classes:$JUNIT_JAR:$HAMCREST_JAR" @"$BUILD/test-sources.txt"

echo "== writing fixtures with $PYTHON"
"$PYTHON" "$REPO/tests/java_fixtures.py" "$BUILD/fixtures"

echo "== running JUnit"
# Every *Test.java under src/test/java is a test class.
TESTS=$(cd "$HERE/src/test/java" && find . -name '*Test.java' | sort | sed -e 's|^\./||' -e 's|\.java$||' -e 's|/|.|g')
# C1 only and the serial collector: the suite is short, start-up dominates (about half the time).
# shellcheck disable=SC2086
exec "$JAVA" -Xmx2g -ea -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dhashpack.vectors="$REPO/tests/vectors/hash_vectors.json" \
    -Dhashpack.fixtures="$BUILD/fixtures" \
    -cp "$BUILD/classes:$BUILD/test-classes:$JUNIT_JAR:$HAMCREST_JAR" \
    org.junit.runner.JUnitCore $TESTS
