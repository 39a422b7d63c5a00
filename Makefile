# Two commands do everything on a fresh machine: `make book` and `make test` (see README.md).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# One thread per process: it is what the stored notebook outputs were produced with, and on two
# cores two single-threaded workers are faster than two processes fighting over threads.
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export PYTHONHASHSEED := 0
NBVAL := $(BIN)/pytest --nbval --nbval-current-env --nbval-sanitize-with nbval_sanitize.cfg -p no:cacheprovider
TIMES := _build/timings.txt

.PHONY: help venv lint unit nbval build book test notebooks clean

help:
	@echo "make book       build the HTML book into _build/html (sets up .venv first)"
	@echo "make test       ruff, unit tests, strict nbval on every notebook, strict book build"
	@echo "make notebooks  re-execute every notebook in place, refreshing stored outputs"
	@echo "make clean      remove build outputs (keeps .venv)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

# Each step appends "<seconds> <step>" to $(TIMES); `make test` prints the summary at the end.
define timed
	@mkdir -p _build; start=$$(date +%s); $(2); echo "$$(( $$(date +%s) - start )) $(1)" >> $(TIMES)
endef

lint: venv
	$(call timed,lint,$(BIN)/ruff check .)

unit: venv
	$(call timed,unit,$(BIN)/pytest tests/ -x -q -n 2 -p no:cacheprovider)

nbval: venv
	$(call timed,nbval,$(NBVAL) -x -q -n 2 --dist loadfile notebooks/)

build: venv
	$(call timed,build,$(BIN)/jupyter-book build . -W --keep-going -q)

book: venv
	$(BIN)/jupyter-book build . -q
	@echo "The book is at $(abspath _build/html/index.html)"

test: venv
	@mkdir -p _build; rm -f $(TIMES)
	@$(MAKE) --no-print-directory lint unit nbval build
	@echo "---- timing summary (seconds) ----"; cat $(TIMES); \
	  awk '{ total += $$1 } END { print total, "total" }' $(TIMES)

notebooks: venv
	$(BIN)/python tools/execute_notebooks.py $(NB)

clean:
	rm -rf _build .pytest_cache .ruff_cache
