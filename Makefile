# Two entry points for a fresh Debian 12 machine, as root:
#   make demo   install everything, then run the main job on the example distribution
#   make test   install everything, then run ruff, mypy --strict and pytest
# Both are idempotent: every step is skipped when its result is already there.

# libxml2-utils: xmllint checks Pungi's variants.xml against Pungi's DTD (factory import/export pungi).
# ruby: tests measure generated CI files as GitLab does (Psych + ObjectSpace.memsize_of).
DEB_PACKAGES := git rpm createrepo-c dnf ostree gir1.2-ostree-1.0 gir1.2-modulemd-2.0 \
                libxml2-utils ruby \
                python3-gi python3-venv xorriso umoci skopeo gnupg rsync graphviz
VENV := .venv
PY := $(VENV)/bin/python
FACTORY := $(VENV)/bin/factory
DISTGIT := .factory/distgit

.PHONY: demo demo-key test deps venv lint typecheck pytest bench clean

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

DEMO_GNUPG := .factory/gnupg
RELEASES := .factory/releases
DEMO_RELEASED := repo:Server repo:Workstation ostree:AtomicHost/host iso:AtomicHost/installer \
                 container:Cloud/base container:Cloud/httpd

# A throwaway signing key for the demo (made once, kept in .factory/gnupg).
demo-key:
	@if [ ! -s $(DEMO_GNUPG)/fingerprint ]; then \
	  mkdir -p -m 700 $(DEMO_GNUPG); \
	  gpg --homedir $(DEMO_GNUPG) --batch --pinentry-mode loopback --passphrase '' \
	      --quick-generate-key 'Factory Linux demo signing <demo@factory.invalid>' ed25519 sign never 2>/dev/null; \
	  gpg --homedir $(DEMO_GNUPG) --list-secret-keys --with-colons | awk -F: '/^fpr/ {print $$10; exit}' \
	      > $(DEMO_GNUPG)/fingerprint; \
	fi

demo: venv demo-key
	$(FACTORY) example distgit $(DISTGIT)
	$(FACTORY) validate
	@echo "== compose, check and gate everything out of date (a second run composes nothing)"
	$(FACTORY) compose
	@echo "== sign and release: Server and Workstation repos, the Atomic Host, the Cloud images"
	@for node in $(DEMO_RELEASED); do \
	  id=$$($(FACTORY) latest $$node --json | $(PY) -c 'import json,sys; print(*json.load(sys.stdin).values())') && \
	  $(FACTORY) release $$id --to $(RELEASES)/$$(echo $$node | tr ':/' '--') \
	    --gnupghome $(DEMO_GNUPG) --key $$(cat $(DEMO_GNUPG)/fingerprint) || exit 1; \
	done
	@echo "== lineage of the released Atomic Host installer, down to dist-git commits"
	$(FACTORY) lineage $$($(FACTORY) latest iso:AtomicHost/installer --json | $(PY) -c 'import json,sys; print(*json.load(sys.stdin).values())') --tree | head -40
	@echo "== the bot: what it would open for the moved dist-git branches (dry run)"
	$(FACTORY) bot reconcile --dry-run
	@echo "== the artifact graph"
	$(FACTORY) graph --format text

lint: venv
	$(VENV)/bin/ruff check pipeline tests bench
	$(VENV)/bin/ruff format --check pipeline tests bench

typecheck: venv
	$(VENV)/bin/mypy

pytest: venv gitlab-ci-local
	$(PY) -m pytest

test: lint typecheck pytest

bench: venv
	$(PY) bench/plan_scale.py

# -- gitlab-ci-local (issue 5) ------------------------------------------------------------------
# tests/test_gitlab_ci_local.py runs .gitlab-ci.yml with it. 4.65.1: the newest needs Node 22;
# this one declares Node >= 18 (Debian 12's nodejs). Skipped when the pinned version is there.
GCL_VERSION := 4.65.1
GCL_PREFIX := .factory/npm
GCL := $(GCL_PREFIX)/node_modules/.bin/gitlab-ci-local

.PHONY: gitlab-ci-local
gitlab-ci-local:
	@if [ -x $(GCL) ] && [ "$$($(GCL) --version 2>/dev/null)" = "$(GCL_VERSION)" ]; then exit 0; fi; \
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
	  echo "installing Debian packages: nodejs npm"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
	fi; \
	echo "installing gitlab-ci-local $(GCL_VERSION) into $(GCL_PREFIX)"; \
	npm install --no-save --no-audit --no-fund --prefix $(GCL_PREFIX) gitlab-ci-local@$(GCL_VERSION) >/dev/null
# -- end gitlab-ci-local ------------------------------------------------------------------------

clean:
	rm -rf $(VENV) .factory .pytest_cache .mypy_cache .ruff_cache
