# Two entry points for a fresh Debian 12 machine, as root:
#   make demo   install everything, then run the main job on the example distribution
#   make test   install everything, then run ruff, mypy --strict and pytest
# Both are idempotent: every step is skipped when its result is already there.

# libxml2-utils: xmllint checks Pungi's variants.xml against Pungi's DTD (factory import/export pungi).
# ruby: tests measure generated CI files as GitLab does (Psych + ObjectSpace.memsize_of).
# docker-registry: the registry `make demo` releases container images to (and the tests, on a free
# loopback port of their own); the OCI registry the oci:// artifact store is tested against.
DEB_PACKAGES := git rpm createrepo-c dnf ostree gir1.2-ostree-1.0 gir1.2-modulemd-2.0 \
                libxml2-utils ruby docker-registry \
                python3-gi python3-venv xorriso umoci skopeo gnupg rsync graphviz \
                chromium
# chromium: the browser tests of the overview site (tests/test_site_browser.py), run headless
VENV := .venv
PY := $(VENV)/bin/python
FACTORY := $(VENV)/bin/factory
DISTGIT := .factory/distgit
SITE := .factory/site

.PHONY: demo demo-key demo-registry test deps venv lint typecheck pytest bench clean

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
MIRRORS := .factory/mirror
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

# The registry the demo releases container images to: factory.yaml's release.registry is
# 127.0.0.1:5000/fl. Debian's docker-registry runs from .factory/registry/config.yml (written once,
# storage beside it), its pid in .factory/registry/pid; `make demo-registry` starts it again
# later, `kill $$(cat .factory/registry/pid)` stops it. Plain HTTP: it listens on loopback only.
DEMO_REGISTRY := 127.0.0.1:5000
DEMO_REGISTRY_DIR := .factory/registry

demo-registry: deps
	@mkdir -p $(DEMO_REGISTRY_DIR)
	@if [ ! -s $(DEMO_REGISTRY_DIR)/config.yml ]; then \
	  printf '%s\n' 'version: 0.1' 'log:' '  level: warn' 'storage:' '  filesystem:' \
	    '    rootdirectory: $(CURDIR)/$(DEMO_REGISTRY_DIR)/data' 'http:' '  addr: $(DEMO_REGISTRY)' \
	    > $(DEMO_REGISTRY_DIR)/config.yml; \
	fi
	@pid=$$(cat $(DEMO_REGISTRY_DIR)/pid 2>/dev/null); \
	if [ -n "$$pid" ] && [ "$$(ps -p $$pid -o comm= 2>/dev/null)" = docker-registry ]; then exit 0; fi; \
	nohup docker-registry serve $(DEMO_REGISTRY_DIR)/config.yml > $(DEMO_REGISTRY_DIR)/registry.log 2>&1 & \
	echo $$! > $(DEMO_REGISTRY_DIR)/pid; \
	for i in $$(seq 1 100); do \
	  kill -0 $$(cat $(DEMO_REGISTRY_DIR)/pid) 2>/dev/null || break; \
	  /usr/bin/python3 -c 'import urllib.request as u; u.urlopen("http://$(DEMO_REGISTRY)/v2/", timeout=1)' \
	    2>/dev/null && echo "docker-registry on $(DEMO_REGISTRY) (pid $$(cat $(DEMO_REGISTRY_DIR)/pid))" && exit 0; \
	  sleep 0.1; \
	done; \
	echo "docker-registry did not start on $(DEMO_REGISTRY):"; cat $(DEMO_REGISTRY_DIR)/registry.log; exit 1

demo: venv demo-key demo-registry
	$(FACTORY) example distgit $(DISTGIT)
	$(FACTORY) validate
	@echo "== compose, check and gate everything out of date (a second run composes nothing)"
	$(FACTORY) compose
	@echo "== sign and release: Server and Workstation repos, the Atomic Host, the Cloud images (to $(DEMO_REGISTRY))"
	@for node in $(DEMO_RELEASED); do \
	  id=$$($(FACTORY) latest $$node --json | $(PY) -c 'import json,sys; print(*json.load(sys.stdin).values())') && \
	  $(FACTORY) release $$id --to $(RELEASES)/$$(echo $$node | tr ':/' '--') \
	    --gnupghome $(DEMO_GNUPG) --key $$(cat $(DEMO_GNUPG)/fingerprint) || exit 1; \
	done
	@echo "== verify as a user: the Cloud base image from the registry, under the release's signedBy policy"
	@rel=$(RELEASES)/container-Cloud-base/latest; \
	img=$$($(PY) -c 'import json,sys; print(next(s["image"] for s in json.load(open(sys.argv[1]))["signatures"] if s["kind"] == "container"))' $$rel/RELEASE.json); \
	out=$$(mktemp -d); \
	skopeo --policy $$rel/containers/policy.json --registries.d $$rel/containers/registries.d copy --quiet \
	  --src-tls-verify=false --remove-signatures $$img oci:$$out/image:pulled && echo "  $$img: signed by the release key"; \
	rm -rf $$out
	@echo "== verify as a user: the installer ISO's CHECKSUM (gpg --verify, sha256sum -c)"
	@home=$$(mktemp -d); rel=$$(realpath $(RELEASES)/iso-AtomicHost-installer/latest); \
	gpg --homedir $$home -q --import $$rel/RPM-GPG-KEY-factory 2>/dev/null; \
	cd $$rel/compose/AtomicHost/x86_64/iso && gpg --homedir $$home --verify *-CHECKSUM 2>&1 | grep 'Good signature' && \
	sha256sum -c *-CHECKSUM 2>/dev/null; status=$$?; gpgconf --homedir $$home --kill gpg-agent; rm -rf $$home; exit $$status
	@echo "== push each release to its mirror ($(MIRRORS)/...), in the order mirrors need"
	@for node in $(DEMO_RELEASED); do \
	  slug=$$(echo $$node | tr ':/' '--'); \
	  $(FACTORY) publish $$node --to $(MIRRORS)/$$slug --base-url file://$(CURDIR)/$(MIRRORS)/$$slug || exit 1; \
	done
	@echo "== garbage collection: what it would free (dry run)"
	$(FACTORY) gc --dry-run
	@echo "== lineage of the released Atomic Host installer, down to dist-git commits"
	$(FACTORY) lineage $$($(FACTORY) latest iso:AtomicHost/installer --json | $(PY) -c 'import json,sys; print(*json.load(sys.stdin).values())') --tree | head -40
	@echo "== the bot: what it would open for the moved dist-git branches (dry run)"
	$(FACTORY) bot reconcile --dry-run
	@echo "== the artifact graph"
	$(FACTORY) graph --format text
	@echo "== the demo registry keeps running on $(DEMO_REGISTRY) (pid $$(cat $(DEMO_REGISTRY_DIR)/pid)):" \
	  "stop it with: kill \$$(cat $(DEMO_REGISTRY_DIR)/pid); start it again with: make demo-registry"
	@echo "== the build pipeline overview: where base-runtime stands, then the whole pipeline as a site"
	$(FACTORY) status base-runtime
	$(FACTORY) site $(SITE)
	@echo "open file://$(CURDIR)/$(SITE)/index.html"

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
	$(PY) bench/site_scale.py

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
