# A new user runs `make test` or `make demo` on a fresh machine; both create .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: test demo bench venv clean

venv: $(STAMP)

# torch first, pinned: the CPU build lies on disk; a bare `torch` requirement would pull CUDA.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[all]"
	touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/pytest -q

demo: $(STAMP)
	$(VENV)/bin/channelmarket demo

bench: $(STAMP)
	$(PY) -m channelmarket.eval.bench_env
	$(PY) -m channelmarket.training.bench_batch

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
