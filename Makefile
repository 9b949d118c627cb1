# Two entry points for a fresh Debian 12 machine, as root:
#   make demo   install everything, then run the main job on the example distribution
#   make test   install everything, then run ruff, mypy --strict and pytest
# Both are idempotent: every step is skipped when its result is already there.

DEB_PACKAGES := git rpm createrepo-c dnf ostree gir1.2-ostree-1.0 gir1.2-modulemd-2.0 \
                python3-gi python3-venv xorriso umoci skopeo gnupg rsync graphviz
VENV := .venv
PY := $(VENV)/bin/python
FACTORY := $(VENV)/bin/factory
DISTGIT := .factory/distgit

.PHONY: demo test deps venv lint typecheck pytest bench clean

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${db:Status-Status}\n' $$p 2>/dev/null | grep -qx installed || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml | deps
	/usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

venv: deps $(VENV)/.installed

demo: venv
	$(FACTORY) example distgit $(DISTGIT)
	$(FACTORY) validate
	@echo "== compose everything that is out of date (a second run composes nothing)"
	$(FACTORY) compose
	@echo "== the latest good variant repos"
	@$(FACTORY) latest --json | $(PY) -c 'import json,sys; [print(" ", n, "->", c) for n, c in json.load(sys.stdin).items() if n.startswith("repo:")]'
	@echo "== lineage of the Server repo"
	$(FACTORY) lineage $$($(FACTORY) latest repo:Server --json | $(PY) -c 'import json,sys; print(json.load(sys.stdin)["repo:Server"])')
	@echo "== what a move of openssl's f42 branch (the CVE-2026-1234 backport) would rebuild"
	$(FACTORY) impact openssl --branch f42
	@echo "== the artifact graph"
	$(FACTORY) graph --format text

lint: venv
	$(VENV)/bin/ruff check pipeline tests bench
	$(VENV)/bin/ruff format --check pipeline tests bench

typecheck: venv
	$(VENV)/bin/mypy

pytest: venv
	$(PY) -m pytest

test: lint typecheck pytest

bench: venv
	$(PY) bench/plan_scale.py

clean:
	rm -rf $(VENV) .factory .pytest_cache .mypy_cache .ruff_cache
