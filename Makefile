# Entry points for a fresh Debian 12 machine, as root:
#   make demo           install everything, then run the main job on the example distribution
#   make test           install everything, then run ruff, mypy --strict and pytest
#   make runner-image   the OCI image GitLab jobs run in (see "runner image" below)
# All are idempotent: every step is skipped when its result is already there.

# Debian packages, in two lists; `make deps` installs both.
# COMPOSE_PACKAGES: what a pipeline's jobs run (composers, checks, release, lineage). The runner
# image holds these and nothing else of Debian's: add a tool a job needs here, one line each.
COMPOSE_PACKAGES := git ca-certificates python3-gi python3-venv
COMPOSE_PACKAGES += rpm createrepo-c dnf gir1.2-modulemd-2.0
# python3-six: gi's Modulemd overrides import it, and gir1.2-modulemd-2.0 does not depend on it
COMPOSE_PACKAGES += python3-six
COMPOSE_PACKAGES += ostree gir1.2-ostree-1.0
COMPOSE_PACKAGES += xorriso umoci skopeo
COMPOSE_PACKAGES += gnupg rsync
# Binary package sources (factory.yaml's `sources:`): librepo downloads, createrepo_c's Python API
# reads primary.xml and reads and writes updateinfo.xml, rpm's bindings read headers.
COMPOSE_PACKAGES += python3-librepo python3-createrepo-c python3-rpm
# TEST_PACKAGES: what the tests and `make demo` add on this machine (never in the runner image).
# libxml2-utils: xmllint checks Pungi's variants.xml against Pungi's DTD (factory import/export pungi).
TEST_PACKAGES := libxml2-utils
# ruby: tests measure generated CI files as GitLab does (Psych + ObjectSpace.memsize_of).
TEST_PACKAGES += ruby
# docker-registry: the registry `make demo` releases container images to (and the tests, on a free
# loopback port of their own); the OCI registry the oci:// artifact store is tested against.
TEST_PACKAGES += docker-registry
# graphviz: `factory graph --format svg` (dot).
TEST_PACKAGES += graphviz
# chromium: the browser tests of the overview site (tests/test_site_browser.py), run headless
TEST_PACKAGES += chromium
# mmdebstrap: builds the runner image's root filesystem (make runner-image, tests/test_runner_image.py)
TEST_PACKAGES += mmdebstrap
DEB_PACKAGES = $(COMPOSE_PACKAGES) $(TEST_PACKAGES)
VENV := .venv
PY := $(VENV)/bin/python
FACTORY := $(VENV)/bin/factory
DISTGIT := .factory/distgit
UPSTREAM := .factory/upstream
SITE := .factory/site

.PHONY: demo demo-key demo-registry test deps venv lint typecheck pytest bench clean

# $(call install,PACKAGES): install those of the Debian packages that are not installed yet
install = missing=$$(for p in $(1); do \
	    dpkg-query -W -f='$${db:Status-Status}\n' $$p 2>/dev/null | grep -qx installed || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

deps:
	@$(call install,$(DEB_PACKAGES))

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
	@# the upstream source python3:3.12 takes python3-idna from (built once; the security day of
	@# the README publishes its next day with `factory example upstream $(UPSTREAM) --day ...`)
	@if [ ! -d $(UPSTREAM)/x86_64 ]; then $(FACTORY) example upstream $(UPSTREAM); fi
	$(FACTORY) validate
	@echo "== compose, check and gate everything out of date (a second run composes nothing)"
	$(FACTORY) compose
	@echo "== sign and release: Server and Workstation repos, the Atomic Host, the Cloud images (to $(DEMO_REGISTRY))"
	@for node in $(DEMO_RELEASED); do \
	  id=$$($(FACTORY) latest $$node --json | $(PY) -c 'import json,sys; print(*json.load(sys.stdin).values())') && \
	  $(FACTORY) release $$id --to $(RELEASES)/$$(echo $$node | tr ':/' '--') \
	    --gnupghome $(DEMO_GNUPG) --key $$(cat $(DEMO_GNUPG)/fingerprint) || exit 1; \
	done
	scripts/verify-demo-release $(RELEASES)
	@echo "== push each release to its mirror ($(MIRRORS)/...), in the order mirrors need"
	@for node in $(DEMO_RELEASED); do \
	  slug=$$(echo $$node | tr ':/' '--'); \
	  $(FACTORY) publish $$node --to $(MIRRORS)/$$slug --base-url file://$(CURDIR)/$(MIRRORS)/$$slug || exit 1; \
	done
	@echo "== garbage collection: what it would free (dry run)"
	$(FACTORY) gc --dry-run
	@echo "== lineage of the released Atomic Host installer, down to dist-git commits"
	$(FACTORY) lineage $$($(FACTORY) latest iso:AtomicHost/installer --json | $(PY) -c 'import json,sys; print(*json.load(sys.stdin).values())') --tree | head -40
	@echo "== the history of dist-git branches and of the upstream source, then what the bot would open (dry run)"
	$(FACTORY) history record
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

# -- runner image (issue 20) ----------------------------------------------------------------------
# The OCI image every GitLab job runs in (`image: ${FACTORY_IMAGE}`): Debian 12 (bookworm) with
# COMPOSE_PACKAGES and their dependencies, and factory with its Python dependencies in a venv
# (/opt/factory, seeing Debian's gi, dnf and rpm; `factory` on PATH). No browser, Ruby, registry
# or Node: those are TEST_PACKAGES. Built without a Docker daemon: mmdebstrap makes the root file
# system as one tarball (.debs kept in RUNNER_CACHE, outside the clone, so a second build
# downloads nothing), umoci makes it an OCI layout's one layer ($(RUNNER_LAYOUT), tag
# $(RUNNER_TAG): factory's version), skopeo pushes it:
#   make runner-image-push REGISTRY=registry.example.com/group/project [SKOPEO_FLAGS=...]
# pushes $(REGISTRY)/runner:$(RUNNER_TAG) and prints its digest, to pin FACTORY_IMAGE by.
# Build it again for every new factory version (RUNNER_TAG is the version; the jobs' default
# FACTORY_IMAGE names it), and whenever COMPOSE_PACKAGES or factory's dependencies change.
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml)
RUNNER_LAYOUT := .factory/runner-image
RUNNER_TAG := $(VERSION)
RUNNER_CACHE := /var/cache/factory-runner-image
RUNNER_SUITE := bookworm
# mmdebstrap's MIRROR arguments; empty: deb.debian.org with bookworm-updates and the security archive
RUNNER_MIRRORS :=
SKOPEO_FLAGS :=
comma := ,
space := $(subst ,, )

.PHONY: runner-image runner-image-push print-%

# What building the image needs, and no more (not the venv, not TEST_PACKAGES but mmdebstrap).
RUNNER_BUILD_PACKAGES := mmdebstrap umoci skopeo git python3-venv

runner-image:
	@$(call install,$(RUNNER_BUILD_PACKAGES))
	@set -e; work=$$(mktemp -d /tmp/factory-runner-image.XXXXXX); trap 'rm -rf "$$work"' EXIT; \
	mkdir -p $(RUNNER_CACHE)/debs $(RUNNER_CACHE)/wheels "$$work/src" "$$work/wheels"; \
	epoch=$$(git log -1 --format=%ct); created=$$(date -u -d @$$epoch +%Y-%m-%dT%H:%M:%SZ); \
	revision=$$(git rev-parse HEAD)$$(test -z "$$(git status --porcelain)" || echo -modified); \
	echo "== factory $(VERSION) ($$revision) and its Python dependencies as wheels"; \
	git ls-files -z --cached --others --exclude-standard --deduplicate \
	  | tar --null --files-from=- --ignore-failed-read -cf - | tar -xf - -C "$$work/src"; \
	/usr/bin/python3 -m venv "$$work/pip"; \
	"$$work/pip/bin/python" -m pip wheel -q --disable-pip-version-check --find-links $(RUNNER_CACHE)/wheels \
	  --wheel-dir "$$work/wheels" "$$work/src"; \
	find "$$work/wheels" -name '*.whl' ! -name 'factory-*' -exec cp -n {} $(RUNNER_CACHE)/wheels/ \; ; \
	echo "== the root file system: Debian $(RUNNER_SUITE) with $(COMPOSE_PACKAGES)"; \
	SOURCE_DATE_EPOCH=$$epoch mmdebstrap --quiet --mode=root --variant=essential \
	  --include='$(subst $(space),$(comma),$(strip $(COMPOSE_PACKAGES)))' \
	  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
	  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
	  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
	  --skip=essential/unlink --skip=download/empty \
	  --setup-hook='mkdir -p "$$1"/var/cache/apt/archives/' \
	  --setup-hook='sync-in $(RUNNER_CACHE)/debs /var/cache/apt/archives/' \
	  --customize-hook='sync-out /var/cache/apt/archives $(RUNNER_CACHE)/debs' \
	  --customize-hook="copy-in $$work/wheels /tmp" \
	  --customize-hook='chroot "$$1" env -i PATH=/usr/bin:/bin /usr/bin/python3 -m venv --system-site-packages /opt/factory' \
	  --customize-hook='chroot "$$1" env -i PATH=/usr/bin:/bin /opt/factory/bin/pip install -q --disable-pip-version-check --no-index --find-links /tmp/wheels factory' \
	  --customize-hook='ln -s /opt/factory/bin/factory "$$1"/usr/local/bin/factory' \
	  --customize-hook='chroot "$$1" env -i PATH=/usr/local/bin:/usr/bin:/bin factory --version' \
	  $(RUNNER_SUITE) "$$work/rootfs.tar" $(RUNNER_MIRRORS); \
	echo "== the OCI image $(RUNNER_LAYOUT):$(RUNNER_TAG)"; \
	rm -rf $(RUNNER_LAYOUT).new; umoci init --layout $(RUNNER_LAYOUT).new; \
	umoci new --image $(RUNNER_LAYOUT).new:$(RUNNER_TAG); \
	umoci raw add-layer --image $(RUNNER_LAYOUT).new:$(RUNNER_TAG) --history.created=$$created \
	  --history.created_by='make runner-image: mmdebstrap $(RUNNER_SUITE), factory $(VERSION)' "$$work/rootfs.tar"; \
	umoci config --image $(RUNNER_LAYOUT).new:$(RUNNER_TAG) --created=$$created --history.created=$$created \
	  --author='make runner-image' --os=linux --architecture=$$(dpkg --print-architecture) \
	  --config.cmd=/bin/bash --config.env=LANG=C.UTF-8 \
	  --config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	  --config.label=org.opencontainers.image.title=factory-runner \
	  --config.label=org.opencontainers.image.version=$(VERSION) \
	  --config.label=org.opencontainers.image.revision=$$revision \
	  --config.label=org.opencontainers.image.created=$$created; \
	umoci gc --layout $(RUNNER_LAYOUT).new; \
	rm -rf $(RUNNER_LAYOUT); mv $(RUNNER_LAYOUT).new $(RUNNER_LAYOUT); \
	skopeo inspect --format '$(RUNNER_LAYOUT):$(RUNNER_TAG): {{.Digest}}, {{len .Layers}} layer' oci:$(RUNNER_LAYOUT):$(RUNNER_TAG)

# Pushes the image built last (builds one if there is none): `make runner-image runner-image-push`
# builds it again first.
runner-image-push: $(RUNNER_LAYOUT)/index.json
	@test -n "$(REGISTRY)" || { echo "give REGISTRY=host/path (e.g. \$$CI_REGISTRY_IMAGE)"; exit 2; }
	skopeo copy --quiet $(SKOPEO_FLAGS) --digestfile $(RUNNER_LAYOUT)/pushed.digest \
	  oci:$(RUNNER_LAYOUT):$(RUNNER_TAG) docker://$(REGISTRY)/runner:$(RUNNER_TAG)
	@echo "pushed $(REGISTRY)/runner:$(RUNNER_TAG); pin it: FACTORY_IMAGE=$(REGISTRY)/runner@$$(cat $(RUNNER_LAYOUT)/pushed.digest)"

$(RUNNER_LAYOUT)/index.json:
	$(MAKE) runner-image

# `make -s print-COMPOSE_PACKAGES`: a variable's value (the tests read the package lists so)
print-%:
	@echo $($*)
# -- end runner image ------------------------------------------------------------------------------

clean:
	rm -rf $(VENV) .factory .pytest_cache .mypy_cache .ruff_cache
