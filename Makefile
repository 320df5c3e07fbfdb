# Two commands do all set-up on a fresh machine (see README):
#   make run    the daemon on the embedded default (./naskahd-data), in its own venv
#   make test   the whole test suite, in its own venv, with the system packages it needs
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run test deps catalogs clean

$(VENV)/.run-ready: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.test-ready: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.run-ready

run: $(VENV)/.run-ready
	$(VENV)/bin/naskahd run

deps:
	scripts/system-deps

test: deps $(VENV)/.test-ready
	$(PY) -m pytest $(PYTEST_ARGS)

# Re-extract the strings, merge them into the catalogs, compile the .mo files; lists
# Indonesian strings still to translate (tests/test_i18n.py fails until they are).
# Babel (pybabel) does the extraction; it is in the [test] extra, not a runtime dependency.
catalogs: $(VENV)/.test-ready
	$(PY) scripts/update-catalogs

clean:
	rm -rf $(VENV) build *.egg-info
