# The two commands of the README. Each does all of its own set-up on a brand-new machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hashpack-installed
# The CPU build of torch that lies on this kind of machine's disk; the package itself asks for torch>=2.4.
TORCH_PIN := torch==2.13.0
# The torchvision release built against that torch (its model zoo is a test dependency).
TORCHVISION_PIN := torchvision==0.28.0
APT_PACKAGES := default-jdk-headless junit4 libhamcrest-java libgoogle-gson-java dataset-fashion-mnist chromium

.PHONY: demo test test-zoo-large lint format setup system-deps clean accuracy accuracy-quick web-demo web-demo-deps web-demo-bench

demo: $(STAMP)
	$(BIN)/hashpack demo

test: $(STAMP) system-deps web-demo-deps
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

# The browser demo (web_demo/): onnxruntime-web at the version pinned in web_demo/package-lock.json.
# `npm ci --omit=dev` skips onnxruntime-node, which only benchmarks/web_demo.py needs (web-demo-bench).
WEB_DEMO_ORT := web_demo/node_modules/onnxruntime-web/package.json
web-demo-deps: $(WEB_DEMO_ORT)

$(WEB_DEMO_ORT): web_demo/package.json web_demo/package-lock.json
	cd web_demo && npm ci --omit=dev --no-audit --no-fund
	touch $@

# Train the demo's model and write the page to out/web-demo (then serve that directory on 127.0.0.1).
web-demo: $(STAMP) web-demo-deps
	$(BIN)/hashpack demo --out out/demo
	$(BIN)/hashpack export out/demo/digits_mlp_hashed.hpk --format onnx -o out/demo/digits_mlp_hashed.onnx --web-demo out/web-demo
	@echo "serve it: $(BIN)/python -m http.server --bind 127.0.0.1 -d out/web-demo 8000  ->  http://127.0.0.1:8000/"

# Browser vs onnxruntime-node vs Python ORT (onnxruntime-node's postinstall would fetch CUDA files: skipped).
web-demo-bench: $(STAMP) system-deps
	cd web_demo && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/web_demo.py
