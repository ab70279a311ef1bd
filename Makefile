# The two commands: `make demo` runs the main job on the embedded Adult dataset, `make test` runs
# the tests. Both create .venv and install the pinned versions (constraints.txt) when missing.

PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
WORKDIR ?= demo-output

.PHONY: demo test worker-check bench clean

$(STAMP): setup.py constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade "pip==25.3"
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/aepipe demo --workdir $(WORKDIR)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q tests

# What Dataflow workers get (the Dockerfile's install), in a fresh venv outside the repository,
# run end to end on the multi-process DirectRunner; needs neither .venv nor docker.
worker-check:
	PYTHON=$(PYTHON) bash scripts/check_worker_env.sh

clean:
	rm -rf $(VENV) $(WORKDIR)
