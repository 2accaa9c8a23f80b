# A new user runs `make test` or `make demo` on a fresh machine; both create .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: test test-benchmarl demo bench venv clean web

venv: $(STAMP)

# torch first, pinned: the CPU build lies on disk; a bare `torch` requirement would pull CUDA.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[all]"
	$(PY) -m channelmarket compile --quiet   # numba's kernels into its cache now, not in each first market
	touch $(STAMP)

# Two pytest-xdist workers (the suite is mostly one thread; CI has 2 cores); worksteal: an idle worker takes
# tests queued for the other, so the heavy files do not end in one worker. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist worksteal

# BenchMARL pins an older torchrl than .[all] holds: its own venv, torch==2.13.0 (CPU) first and
# pinned again so the resolver keeps it; a few iterations of IPPO and MAPPO on the shipped task.
BM_VENV := .venv-benchmarl
BM_STAMP := $(BM_VENV)/.installed

$(BM_STAMP): pyproject.toml
	test -x $(BM_VENV)/bin/python || $(PYTHON) -m venv $(BM_VENV)
	$(BM_VENV)/bin/python -m pip install -q --upgrade pip
	$(BM_VENV)/bin/python -m pip install -q torch==2.13.0
	$(BM_VENV)/bin/python -m pip install -q torch==2.13.0 -e ".[benchmarl,test]"
	touch $(BM_STAMP)

test-benchmarl: $(BM_STAMP)
	$(BM_VENV)/bin/pytest -q -p no:cacheprovider tests/training/test_torchrl_benchmarl.py

demo: $(STAMP)
	$(VENV)/bin/channelmarket demo

bench: $(STAMP)
	$(PY) -m channelmarket.eval.bench_env
	$(PY) -m channelmarket.training.bench_batch
	$(PY) -m channelmarket.eval.bench_routing
	$(PY) -m channelmarket.eval.bench_supply_chain

# D3 for the live dashboard, from the npm registry at the versions package-lock.json pins (npm ci),
# copied into the package's static files; fails if the result differs from the committed SHA256SUMS.
WEB := eval/dashboard/web
VENDOR := eval/dashboard/static/vendor
web:
	cd $(WEB) && npm ci --no-audit --no-fund --ignore-scripts
	cp $(WEB)/node_modules/d3/dist/d3.min.js $(VENDOR)/d3.min.js
	cd $(VENDOR) && sha256sum -c SHA256SUMS

clean:
	rm -rf $(VENV) $(BM_VENV) build *.egg-info .pytest_cache
