# The two commands of the README: `make demo` runs the product, `make test` runs every check.
# Both set up what is missing first (Debian packages, a virtualenv with the pinned dependencies, the
# browser assets from npm's lockfile; `make test` also installs Chromium for the page tests).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WEB_STAMP := web/node_modules/.package-lock.json

.PHONY: demo test check setup system-packages browser serve bench

demo: setup
	$(VENV)/bin/usage-gateway demo

test: setup browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/usage-gateway export-schema --check schema/schema.graphql
	$(VENV)/bin/pytest -q

setup: system-packages $(STAMP) $(WEB_STAMP)

system-packages:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing="$$missing redis-server"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	  $$SUDO service postgresql stop >/dev/null 2>&1 || true; \
	  $$SUDO service redis-server stop >/dev/null 2>&1 || true; \
	fi

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==25.3
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# npm's own record of what it installed changes with the lockfile; --ignore-scripts: no package runs code.
$(WEB_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

# Debian's Chromium for the page tests (tests/browser.py drives it with Playwright; nothing is downloaded).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian packages: chromium"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The benchmark suite of DESIGN §10 (bench/run.py): prints a table, writes var/bench/results.json.
# Options through BENCH_ARGS, e.g. `make bench BENCH_ARGS="--only warm,cache --repeat 9"`.
bench: setup
	$(PY) -m bench.run $(BENCH_ARGS)
