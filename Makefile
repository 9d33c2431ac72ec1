# The two commands of the README. Both create or update .venv from pyproject.toml; nothing is installed by hand.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-long bench mutants docs docs-results clean

# then says how to type `cnnlab ...` as the README's sessions do: make cannot change its caller's PATH
DEMO ?= data=digits epochs=20
demo: $(VENV)/.stamp-base
	$(BIN)/cnnlab train --name demo --overwrite $(DEMO)
	@echo
	@echo "cnnlab is installed in $(VENV). To type 'cnnlab ...' as the README does, in each new shell:"
	@echo "  source $(BIN)/activate"
	@echo "then: cnnlab train data=digits epochs=5 --name digits   (the README's first session)"

# two pytest workers on two cores, one torch thread each, handed one test at a time, slow tests first
# (tests/conftest.py): most of a slow test is starting
# Python and torch in subprocesses, which overlap; a single test file runs alone with `pytest FILE`
test: $(VENV)/.stamp-dev
	$(BIN)/python -m pytest -n 2 --dist loadgroup --maxschedchunk 1 --durations=30 -m "not long"

# the longest tests (tests/conftest.py LONG: more docs pages, notebooks and kills, PostgreSQL kills, c10d), which
# `make test` leaves out to stay under six minutes on two cores; CI (.ci/run) runs both, one after the other
test-long: $(VENV)/.stamp-dev
	$(BIN)/python -m pytest -n 2 --dist loadgroup --maxschedchunk 1 --durations=30 -m long

# mutation testing of the modules that decide results ([tool.mutmut] in pyproject.toml; docs/mutation.md):
# minutes to an hour on two cores, so not part of `make test`
mutants: $(VENV)/.stamp-dev
	$(BIN)/python -m pip install --quiet -e '.[mutation]'
	rm -rf mutants
	OMP_NUM_THREADS=1 $(BIN)/mutmut run --max-children 1 > mutants.log 2>&1 || (tail -5 mutants.log; exit 1)
	$(BIN)/mutmut results | tee mutants-survivors.txt | tail -40

# the documentation site into site/ (open site/index.html, or `$(BIN)/mkdocs serve` for http://127.0.0.1:8000); strict: a broken link,
# a page missing from the nav or a key without a meaning fails the build. tests/test_docs.py runs the same build.
docs: $(VENV)/.stamp-dev
	$(BIN)/mkdocs build --strict

# the docs' long sessions (marked <!-- docs-results -->: Fashion-MNIST, CIFAR, hours on a CPU) run again and
# written into the pages with a stamp (version, date, machine, wall time), their pictures copied into
# docs/images, and the tutorial notebooks executed with their outputs saved; not part of `make test`.
# PAGES=docs/tutorials/ablation.md limits it to some pages.
docs-results: $(VENV)/.stamp-dev
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python tools/docs_sessions.py $(PAGES)
	$(BIN)/python tools/docs_notebooks.py

bench: $(VENV)/.stamp-base
	$(BIN)/python benchmarks/loop_overhead.py

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.stamp-base: pyproject.toml setup.py | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.stamp-dev: pyproject.toml setup.py | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[dev,tune,tensorboard,timm]'
	touch $@ $(VENV)/.stamp-base

clean:
	rm -rf $(VENV) runs .pytest_cache site build/docs-results
