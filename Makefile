# The two commands of the README. Each does all of its own set-up on a brand-new machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hashpack-installed
# The CPU build of torch that lies on this kind of machine's disk; the package itself asks for torch>=2.4.
TORCH_PIN := torch==2.13.0
# The torchvision release built against that torch (its model zoo is a test dependency).
TORCHVISION_PIN := torchvision==0.28.0
APT_PACKAGES := default-jdk-headless junit4 libhamcrest-java libgoogle-gson-java dataset-fashion-mnist

.PHONY: demo test test-zoo-large lint format setup system-deps clean accuracy accuracy-quick

demo: $(STAMP)
	$(BIN)/hashpack demo

test: $(STAMP) system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

# vgg11_bn through every backend (~128 M virtual weights: minutes and several GB; not in `test`).
test-zoo-large: $(STAMP) system-deps
	$(BIN)/python -m pytest -m zoo_large tests/test_zoo.py

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -e ".[dev]" "$(TORCH_PIN)" "$(TORCHVISION_PIN)"
	touch $(STAMP)

# JDK + JUnit for the Java decoder's tests, Fashion-MNIST for the accuracy benchmark (Debian packages).
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) out build android_demo/hashpack-java/build .pytest_cache .ruff_cache

# Fashion-MNIST size-vs-error benchmark (writes benchmarks/RESULTS.md and size_vs_error.png).
accuracy: $(STAMP) system-deps
	$(BIN)/python benchmarks/accuracy.py

accuracy-quick: $(STAMP) system-deps
	$(BIN)/python benchmarks/accuracy.py --quick --out out/accuracy-quick
