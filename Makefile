# The README's two commands are `make serve` and `make test`; everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export BENTOML_HOME ?= $(CURDIR)/.bentoml

.PHONY: setup serve serve-bento-fast test chaos fuzz lint model bento container backend test-web bench bench-bento bench-peers train evaluate clean help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install the project with its dev extras

model: $(STAMP) ## import the committed weights into the BentoML model store
	$(BIN)/circle-detector import-model

serve: model ## set up, then serve the Bento (:3000) and the backend (:8000, SQLite)
	$(BIN)/python scripts/serve.py

test: $(STAMP) ## set up, then run ruff and the whole test suite
	bash scripts/test-deps.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -p no:cacheprovider -m "not chaos" $(PYTEST_ARGS)

chaos: $(STAMP) ## set up, then run the fault-injection tests (SIGKILL, outages, memory abuse)
	bash scripts/test-deps.sh
	$(BIN)/python -m pytest -p no:cacheprovider -m chaos $(PYTEST_ARGS)

FUZZ_ARGS ?= --seconds 300
fuzz: $(STAMP) ## fuzz decode_image for 5 minutes (atheris if it installs, else mutational; FUZZ_ARGS=--help)
	@if $(BIN)/python -c "import atheris" 2>/dev/null || $(BIN)/pip install --quiet atheris; then \
		$(BIN)/python -m tests.fuzz.decode_image --atheris $(FUZZ_ARGS); \
	else \
		echo "atheris does not install here: the mutational fuzzer runs instead"; \
		$(BIN)/python -m tests.fuzz.decode_image --cases 1000000 $(FUZZ_ARGS); \
	fi

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

serve-bento-fast: model ## the Bento alone in one process (fast cold start, no supervisor)
	$(BIN)/python -m bentos.circle_detector.standalone

bench-bento: model ## Bento serving overhead, batchers, cold start, and the raw model's speed
	$(BIN)/python benchmarks/serving_overhead.py --standalone
	$(BIN)/python benchmarks/batchers.py
	$(BIN)/python benchmarks/cold_start_bento.py
	$(BIN)/python benchmarks/model_speed.py

bench-peers: $(STAMP) ## the Bento against KServe's ModelServer and MLServer (~15 min; own venvs)
	nice -n 10 $(BIN)/python benchmarks/peers.py $(BENCH_ARGS)

bench: $(STAMP) ## the local benchmark suite, about 4 minutes (results in benchmarks/results/)
	nice -n 10 $(BIN)/python benchmarks/run_local.py $(BENCH_ARGS)

backend: $(STAMP) ## serve the backend alone with seeded fake detections (MODE=dummy)
	MODE=dummy $(BIN)/python -m backend

test-web: $(STAMP) ## the web page's end-to-end tests in headless Chromium (~30 s)
	bash scripts/install-browser.sh
	$(BIN)/python -m pytest -p no:cacheprovider tests/web -q

container: $(STAMP) ## build both images with buildah and test them with podman (root, ~5 min)
	bash scripts/container-test.sh

train: $(STAMP) ## train the detector from scratch (about an hour on 2 cores; resumes if interrupted)
	$(BIN)/circle-detector train

evaluate: $(STAMP) ## evaluate the committed weights against OpenCV's Hough transform
	$(BIN)/circle-detector evaluate

bento: model ## build the CPU Bento
	$(BIN)/bentoml build

clean: ## remove the virtual environment and local stores
	rm -rf $(VENV) .bentoml
