# Two entry points, each complete on a fresh machine:
#   make run   - create .venv if needed, install everything, run `dvc repro` on the embedded synthetic set
#   make test  - same set-up, then the checks (ruff lint + format, mypy) and the test suite
#   make check - the checks alone; make test-fast - the unit tests alone (no DVC pipeline runs)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: setup run check test test-fast clean-venv

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip wheel setuptools
	$(BIN)/pip install -r requirements.txt
	# face-alignment drags in opencv-python, whose cv2/ would shadow the contrib build's cv2.optflow
	$(BIN)/pip uninstall -y opencv-python opencv-python-headless
	$(BIN)/pip install --force-reinstall --no-deps $$(grep '^opencv-contrib-python-headless==' requirements.txt)
	$(BIN)/pip install --no-deps -e .
	$(BIN)/python -c "import cv2; assert hasattr(cv2, 'optflow'), 'cv2.optflow missing: plain opencv shadows contrib'"
	touch $(STAMP)

# stage commands call `python`: the venv's must come first on PATH
run: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

# the same checks as .pre-commit-config.yaml, with the versions pinned in requirements.txt
check: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# one pytest worker per core; a file's tests stay on one worker (its module fixtures built once), files in
# collection order (tests/conftest.py puts the slow ones first)
test: check
	$(BIN)/python -m pytest -q -n auto --dist loadfile --no-loadscope-reorder

clean-venv:
	rm -rf $(VENV)

# the unit tests only (no `slow` marker: no DVC pipeline runs), for a quick check before pushing
test-fast: setup
	$(BIN)/python -m pytest -q -n auto --dist loadfile --no-loadscope-reorder -m "not slow"
