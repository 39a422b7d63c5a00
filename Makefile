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
# MathJax and the widget manager, installed from npm and served from the build (offline book).
ASSETS := _build/offline_assets/_static/vendor/VERSIONS.txt
# The Colab check: a venv of its own, separate from .venv, with the package installed from the
# checkout (not editable) as on Colab, and requirements.txt's pins as constraints.
COLAB_VENV := _build/colab-venv
COLAB_BIN := $(COLAB_VENV)/bin
COLAB_STAMP := $(COLAB_VENV)/.installed-stamp
COLAB_CONSTRAINTS := $(COLAB_VENV)/constraints.txt
COLAB_SRC := _build/colab-src
COLAB_EXTENSIONS := _build/colab-torch-extensions
TORCH_PIN := $(shell grep -E '^torch==' requirements.txt)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Installs Debian packages on a fresh machine, refreshing the package lists only when needed.
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -y -qq
define apt_install
	@command -v $(1) >/dev/null || $(APT_GET) install $(2) || { $(APT_GET) update && $(APT_GET) install $(2); }
endef

.PHONY: help venv assets chromium lint unit nbval nbval-default colab colab-venv build browser book \
	test notebooks bench reproduce clean

help:
	@echo "make book       build the HTML book into _build/html (sets up .venv first)"
	@echo "make test       ruff, unit tests, strict nbval on every notebook (twice: this CPU's kernels"
	@echo "                and ATEN_CPU_CAPABILITY=default), every chapter run as on Colab, strict"
	@echo "                book build, browser tests of every page (offline, in Chromium)"
	@echo "make colab      run every chapter as on Colab: alone in an empty folder, with the package"
	@echo "                installed from the checkout into a fresh venv (_build/colab-venv)"
	@echo "make browser    only the browser tests of an already built book (screenshots in _build/screenshots)"
	@echo "make notebooks  re-execute every notebook in place, refreshing stored outputs"
	@echo "make bench      NTM benchmarks: throughput (plain and fused), time to converge on copy, memory (~20 min)"
	@echo "make reproduce  train every shipped model again from its manifest (two processes,"
	@echo "                one core each; about 2.3 hours) and check each on fresh data"
	@echo "make clean      remove build outputs (keeps .venv)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

# npm ci + copy of what the book serves (tools/fetch_assets.py); needs Node.js and npm.
$(ASSETS): package.json package-lock.json tools/fetch_assets.py tools/assets/widgets-offline.js | $(BIN)/python
	$(call apt_install,npm,nodejs npm)
	$(BIN)/python tools/fetch_assets.py

assets: $(ASSETS)

# The browser tests drive Debian's Chromium (never a browser downloaded by Playwright).
chromium:
	$(call apt_install,chromium,chromium)

# Each step appends "<seconds> <step>" to $(TIMES); `make test` prints the summary at the end.
define timed
	@mkdir -p _build; start=$$(date +%s); $(2); echo "$$(( $$(date +%s) - start )) $(1)" >> $(TIMES)
endef

lint: venv
	$(call timed,lint,$(BIN)/ruff check .)

unit: venv
	$(call timed,unit,$(BIN)/pytest tests/ --ignore=tests/browser -x -q -n 2 -p no:cacheprovider)

nbval: venv
	$(call timed,nbval,$(NBVAL) -x -q -n 2 --dist loadfile notebooks/)

# The same with PyTorch's portable CPU kernels instead of this CPU's vector instructions: an output
# that differs here also differs on other CPUs.
nbval-default: venv
	$(call timed,nbval-default,ATEN_CPU_CAPABILITY=default $(NBVAL) -x -q -n 2 --dist loadfile notebooks/)

# What pip installs from: a copy of the checkout's files that git tracks or would add, so that a
# build leaves nothing in the checkout and no stale build output gets into the wheel.
define colab_copy
	rm -rf $(COLAB_SRC); mkdir -p $(COLAB_SRC)
	git ls-files -z --cached --others --exclude-standard \
	  | tar --null --ignore-failed-read -T - -cf - | tar -xf - -C $(COLAB_SRC)
endef

# A new venv whenever requirements.txt or pyproject.toml change: torch first (the pinned local
# wheel), then the package with the book extra, nbclient and ipykernel.
$(COLAB_STAMP): requirements.txt pyproject.toml
	@test -n "$(TORCH_PIN)" || { echo "requirements.txt pins no torch==" >&2; exit 1; }
	rm -rf $(COLAB_VENV)
	$(colab_copy)
	$(call timed,colab-venv,$(PYTHON) -m venv $(COLAB_VENV) \
	  && grep -vE '^[[:space:]]*(#|-e[[:space:]]|$$)' requirements.txt > $(COLAB_CONSTRAINTS) \
	  && $(COLAB_BIN)/python -m pip install --quiet "$(TORCH_PIN)" -c $(COLAB_CONSTRAINTS) \
	  && $(COLAB_BIN)/python -m pip install --quiet "./$(COLAB_SRC)[book]" nbclient ipykernel \
	       -c $(COLAB_CONSTRAINTS))
	touch $@

colab-venv: $(COLAB_STAMP)

# The package is reinstalled from the checkout on every run (it is not editable), then every
# chapter runs alone in an empty folder (tools/colab_check.py; NB=notebooks/X.ipynb for one). The
# fused extension is compiled afresh into a folder of its own, as on a new Colab machine.
colab: $(COLAB_STAMP)
	$(colab_copy)
	rm -rf $(COLAB_EXTENSIONS)
	$(call timed,colab-install,$(COLAB_BIN)/python -m pip install --quiet --no-deps \
	  --force-reinstall ./$(COLAB_SRC))
	$(call timed,colab,TORCH_EXTENSIONS_DIR=$(abspath $(COLAB_EXTENSIONS)) $(COLAB_BIN)/python tools/colab_check.py $(NB))

build: venv assets
	$(call timed,build,$(BIN)/jupyter-book build . -W --keep-going -q)

# Needs the built book (`make build`); serves _build/html on localhost with the internet blocked.
browser: venv chromium
	$(call timed,browser,$(BIN)/pytest tests/browser -q -p no:cacheprovider)

book: venv assets
	$(BIN)/jupyter-book build . -q
	@echo "The book is at $(abspath _build/html/index.html)"

test: venv
	@mkdir -p _build; rm -f $(TIMES)
	@$(MAKE) --no-print-directory lint unit nbval nbval-default colab build browser
	@echo "---- timing summary (seconds) ----"; cat $(TIMES); \
	  awk '{ total += $$1 } END { print total, "total" }' $(TIMES)

notebooks: venv
	$(BIN)/python tools/execute_notebooks.py $(NB)

bench: venv
	$(BIN)/python benchmarks/run.py --fused --preset copy-row0-gamma2 --recipe fast-adam-settle10 --seconds 6 --repeats 5

reproduce: venv
	$(BIN)/python tools/reproduce.py

clean:
	rm -rf _build .pytest_cache .ruff_cache
