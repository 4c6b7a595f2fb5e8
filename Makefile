# `make serve` starts Ficus on the embedded SQLite default; `make test` runs the whole test suite.
# Both create the virtualenv (.venv) and install what is needed on first use.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: serve test bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/ficus serve

test: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2 -q

bench: $(STAMP)
	command -v wrk >/dev/null || apt-get install -y wrk
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e ".[bench]"
	$(VENV)/bin/python -m benchmarks --tier S

clean:
	rm -rf $(VENV) .pytest_cache
