# Two commands do all set-up on a fresh machine (see README):
#   make run    the daemon on the embedded default (./naskahd-data), in its own venv
#   make test   the whole test suite, in its own venv, with the system packages it needs
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run test deps catalogs clean install uninstall screenshots

# -- install like a system package: `make install [DESTDIR=...] [PREFIX=/usr/local]` ---------
# naskahd in its own venv under PREFIX/lib/naskahd, `naskahd` on PATH (PREFIX/bin), the units,
# sysusers and tmpfiles files (PREFIX/lib/..., which systemd searches for /usr and /usr/local),
# the man page, /etc/naskahd/naskahd.toml and /etc/samba/naskahd.conf (never overwritten).
# Offline: PIP_ARGS="--no-index --find-links=WHEELHOUSE" INSTALL_SPEC=naskahd.
# `make uninstall` removes what install put there; the data (drop, archive, state) never.
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib/naskahd
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
MANDIR ?= $(PREFIX)/share/man
PIP_ARGS ?=
INSTALL_SPEC ?= .
INSTALLED_CONFIGS := $(SYSCONFDIR)/naskahd/naskahd.toml:etc/naskahd.toml $(SYSCONFDIR)/samba/naskahd.conf:etc/samba/naskahd.conf

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

# The web page's screenshots in docs/ (web-dashboard.png, web-register.png), taken by the
# browser test with Debian's chromium against the real daemon and web process.
screenshots: deps $(VENV)/.test-ready
	NASKAHD_SCREENSHOTS=$(CURDIR)/docs $(PY) -m pytest -q tests/test_web_browser.py -k dashboard

clean:
	rm -rf $(VENV) build *.egg-info

install:
	rm -rf "$(DESTDIR)$(LIBDIR)"
	$(PYTHON) -m venv "$(DESTDIR)$(LIBDIR)"
	"$(DESTDIR)$(LIBDIR)/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile $(PIP_ARGS) $(INSTALL_SPEC)
	# The venv was made under DESTDIR: its scripts must name the final place.
	[ -z "$(DESTDIR)" ] || grep -rlF "$(DESTDIR)$(LIBDIR)" "$(DESTDIR)$(LIBDIR)/bin" | xargs -r sed -i "s|$(DESTDIR)$(LIBDIR)|$(LIBDIR)|g"
	# Byte-compiled now, naming the final paths: the service's user cannot write __pycache__
	# there, and without .pyc files every command compiled SQLAlchemy and naskahd anew (seconds).
	"$(DESTDIR)$(LIBDIR)/bin/python" -m compileall -q -j 0 $(if $(DESTDIR),-s "$(DESTDIR)" -p /) "$(DESTDIR)$(LIBDIR)/lib" >/dev/null
	install -d "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(UNITDIR)" "$(DESTDIR)$(SYSUSERSDIR)" "$(DESTDIR)$(TMPFILESDIR)" "$(DESTDIR)$(MANDIR)/man8"
	ln -sfn "$$(realpath -m --relative-to="$(BINDIR)" "$(LIBDIR)/bin/naskahd")" "$(DESTDIR)$(BINDIR)/naskahd"
	sed "s|/usr/local/bin/naskahd|$(BINDIR)/naskahd|g; s|/etc/naskahd/|$(SYSCONFDIR)/naskahd/|g" systemd/naskahd.service > "$(DESTDIR)$(UNITDIR)/naskahd.service"
	chmod 0644 "$(DESTDIR)$(UNITDIR)/naskahd.service"
	sed "s|/usr/local/bin/naskahd|$(BINDIR)/naskahd|g; s|/etc/naskahd/|$(SYSCONFDIR)/naskahd/|g" systemd/naskahd-web.service > "$(DESTDIR)$(UNITDIR)/naskahd-web.service"
	chmod 0644 "$(DESTDIR)$(UNITDIR)/naskahd-web.service"
	install -m 0644 systemd/naskahd.sysusers "$(DESTDIR)$(SYSUSERSDIR)/naskahd.conf"
	install -m 0644 systemd/naskahd.tmpfiles "$(DESTDIR)$(TMPFILESDIR)/naskahd.conf"
	LANG=C.UTF-8 "$(DESTDIR)$(LIBDIR)/bin/python" scripts/manpage > "$(DESTDIR)$(MANDIR)/man8/naskahd.8"
	chmod 0644 "$(DESTDIR)$(MANDIR)/man8/naskahd.8"
	for pair in $(INSTALLED_CONFIGS); do \
	  target="$(DESTDIR)$${pair%%:*}"; source="$${pair#*:}"; install -d "$$(dirname "$$target")"; \
	  if [ -e "$$target" ]; then echo "install: keeping the existing $$target"; else install -m 0644 "$$source" "$$target"; fi; \
	done
	@echo "installed; as root: systemd-sysusers; systemd-tmpfiles --create; systemctl daemon-reload; systemctl enable --now naskahd (and naskahd-web for the web page)"

uninstall:
	rm -rf "$(DESTDIR)$(LIBDIR)"
	rm -f "$(DESTDIR)$(BINDIR)/naskahd" "$(DESTDIR)$(UNITDIR)/naskahd.service" "$(DESTDIR)$(UNITDIR)/naskahd-web.service" "$(DESTDIR)$(SYSUSERSDIR)/naskahd.conf" \
	  "$(DESTDIR)$(TMPFILESDIR)/naskahd.conf" "$(DESTDIR)$(MANDIR)/man8/naskahd.8"
	# Configuration: removed only if unchanged from the sample; the data is never touched.
	for pair in $(INSTALLED_CONFIGS); do \
	  target="$(DESTDIR)$${pair%%:*}"; source="$${pair#*:}"; \
	  if [ -e "$$target" ] && cmp -s "$$target" "$$source"; then rm -f "$$target"; rmdir "$$(dirname "$$target")" 2>/dev/null || true; \
	  elif [ -e "$$target" ]; then echo "uninstall: keeping the edited $$target"; fi; \
	done
