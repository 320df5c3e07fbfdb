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

# Recompile the gettext catalogs after editing a .po file.
catalogs:
	for po in daemon/naskahd/locale/*/LC_MESSAGES/naskahd.po; do msgfmt --check -o $${po%.po}.mo $$po; done

clean:
	rm -rf $(VENV) build *.egg-info
