# drc: `make demo` runs the whole stack on the embedded default; `make test` runs every test.
# Both start from nothing on a fresh Debian machine as root: Debian packages, venv, install.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint deps test-deps install bench clean

demo: install
	$(BIN)/drc up --demo

test: install test-deps
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/worker_scale.py --takeover
	$(BIN)/python bench/detect_restart.py

# Debian packages, installed only when something is missing (apt needs root).
deps:
	@missing=""; \
	command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing="$$missing redis-server"; \
	command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || missing="$$missing iptables"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	$(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	command -v $(PYTHON) >/dev/null 2>&1 || missing="$$missing python3"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# The tests also look at rendered reports and the dashboard in a real browser: Debian's
# chromium, driven by Playwright for Python (pip), never a browser download; and they check
# docker-compose.yml with Debian's docker-compose. (Network cuts, in the tests and in
# the netcut chaos experiment, are real iptables rules: Debian's iptables, from `deps`.)
test-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@# docker-compose validates docker-compose.yml (`config` needs no daemon); its Recommends
	@# would install the Docker daemon itself, hence --no-install-recommends.
	@command -v docker-compose >/dev/null 2>&1 || { \
		echo "installing Debian packages: docker-compose"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose; \
	}

install: deps $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .drc .pytest_cache .ruff_cache
