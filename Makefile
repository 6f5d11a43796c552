# Berth's two commands are `make run` and `make test`; everything else here is
# what they do on the way.  Each step is idempotent and cheap when done already.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.berth-installed

.PHONY: run test images host-deps test-host-deps venv lint unit clean

run: host-deps venv images
	@$(PY) -m installers.linux.quickstart

# pytest exits 5 when it collected nothing: a suite that proves nothing fails.
test: test-host-deps venv images lint
	@$(VENV)/bin/pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint: venv
	@echo "== ruff"; $(VENV)/bin/ruff check .
	@echo "== mypy"; $(VENV)/bin/mypy

host-deps:
	@installers/linux/host-deps.sh run

test-host-deps:
	@installers/linux/host-deps.sh test

venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml
	@echo "== creating $(VENV) and installing Berth (editable) with its dev tools"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q -U pip
	@$(PY) -m pip install -q -e '.[dev]' --config-settings editable_mode=compat
	@$(PY) -m installers.launchers >/dev/null  # python -IS launchers for berth and berth-runtime (faster start)
	@touch $@

# Seed images: built from Debian packages, cached by content hash under build/.
images: host-deps venv
	@$(PY) -m installers.images build --out build/images

clean:
	rm -rf build
