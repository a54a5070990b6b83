# The two commands a newcomer needs: `make demo` and `make test`. Each sets itself up.
# `make run` runs the service alone on the embedded default.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
# `lint-imports` finds the packages it checks on the import path: the checkout's, whatever
# the venv's install points at. No cache directory is left in the work tree.
LINT_IMPORTS := PYTHONPATH=service:projections $(VENV)/bin/lint-imports --no-cache --no-logo

.PHONY: demo run test bench lint clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[embedded,dev,demo]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/handoff demo

bench: $(STAMP)
	$(VENV)/bin/handoff bench

run: $(STAMP)
	$(VENV)/bin/handoff run

test: $(STAMP)
	$(VENV)/bin/ruff check service projections tests
	$(VENV)/bin/ruff format --check service projections tests
	$(VENV)/bin/mypy
	$(LINT_IMPORTS)
	$(VENV)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check service projections tests
	$(VENV)/bin/mypy
	$(LINT_IMPORTS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
