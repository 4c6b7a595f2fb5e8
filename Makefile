# `make serve` starts Ficus on the embedded SQLite default; `make test` runs the whole test suite.
# Both create the virtualenv (.venv) and install what is needed on first use.
# `make serve` runs with FICUS_AUTH=off (open, for development; the server says so at start):
# `make serve FICUS_AUTH=smart` runs it with the built-in SMART authorization server.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
FICUS_AUTH ?= off
# The browser tests: Debian chromium (Playwright drives it) and the npm SMART client they load
CHROMIUM := /usr/bin/chromium
BROWSER_JS := tests/auth/browser
BROWSER_STAMP := $(BROWSER_JS)/node_modules/.installed

.PHONY: serve test bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

serve: $(STAMP)
	FICUS_AUTH=$(FICUS_AUTH) $(VENV)/bin/ficus serve

test: $(STAMP) $(CHROMIUM) $(BROWSER_STAMP)
	$(VENV)/bin/python -m pytest -n 2 -q

$(CHROMIUM):
	apt-get update
	apt-get install -y --no-install-recommends chromium

$(BROWSER_STAMP): $(BROWSER_JS)/package.json $(BROWSER_JS)/package-lock.json
	cd $(BROWSER_JS) && npm ci --omit=optional --omit=peer --no-audit --no-fund
	touch $(BROWSER_STAMP)

bench: $(STAMP)
	command -v wrk >/dev/null || apt-get install -y wrk
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e ".[bench]"
	$(VENV)/bin/python -m benchmarks --tier S

clean:
	rm -rf $(VENV) .pytest_cache
