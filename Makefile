# Two entry points (see README): `make run` and `make test`. Both create .venv and install raynas
# (editable, with the test extra) when pyproject.toml changed since the last install.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint install clean wheel

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/raynas run recipes/quickstart.yaml

# Tests run on TEST_WORKERS processes (pytest-xdist; a file stays on one worker, so its module fixtures run
# once): most tests wait on Ray, MLflow or subprocesses rather than compute.
TEST_WORKERS ?= 2

# The MLflow UI tests drive headless Chromium; install it when missing (Debian: needs root), never skip.
test: $(STAMP) lint
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# ruff (pyflakes, pycodestyle, isort, bugbear) and the layer contracts (import-linter; pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check raynas tests benchmarks
	$(BIN)/lint-imports

# The wheel the cluster configs ship to every node (clusters/*.yaml file_mounts, clusters/kuberay/Dockerfile)
wheel: $(STAMP)
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .

clean:
	rm -rf $(VENV) .raynas mlflow.db mlruns .pytest_cache dist
