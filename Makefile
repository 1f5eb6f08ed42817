# Two commands do all set-up:  `make lab`  and  `make test`.
# Both create .venv when it is missing and (re)install when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
TORCH  := torch==2.14.1 torchvision==0.29.1
LAB_ARGS ?=
# JupyterLab refuses to run as root without --allow-root (containers, CI).
ROOT_ARGS := $(if $(filter 0,$(shell id -u)),--allow-root,)
PYTEST_ARGS ?=

.PHONY: app docs docs-check lab test lint test-unit test-notebooks test-browser fuzz install install-test chromium bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.stamp-install: pyproject.toml | $(PY)
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e .
	touch $@

# The JupyterLab extension (labextension/, TypeScript): `pip install -e .` builds it once (hatch-jupyter-builder);
# this rebuilds it when its sources, the widget registry or the tutorial notebooks change (writing the registry's
# TypeScript, committed so that a build needs no Python) and puts the build where JupyterLab looks.
LABEXT     := $(VENV)/share/jupyter/labextensions/cnnwidgets
LABEXT_SRC := $(wildcard labextension/src/*.ts labextension/schema/*.json labextension/style/* labextension/scripts/*.js notebooks/*.ipynb) \
              labextension/package.json labextension/yarn.lock labextension/tsconfig.json cnnwidgets/registry.py
$(VENV)/.stamp-labext: $(LABEXT_SRC) $(VENV)/.stamp-install
	$(PY) -c 'import sys; from cnnwidgets.registry import typescript; sys.stdout.write(typescript())' \
		> labextension/src/registry.generated.ts.tmp
	mv labextension/src/registry.generated.ts.tmp labextension/src/registry.generated.ts
	cd labextension && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" jlpm install && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" jlpm build
	rm -rf $(LABEXT) && cp -r cnnwidgets/labextension $(LABEXT) && cp labextension/install.json $(LABEXT)/
	$(VENV)/bin/jupyter labextension list 2>&1 | grep -E "cnnwidgets .*enabled.*OK"
	touch $@

# The test set-up installs torch and the package with its test extras in one editable build (a second one costs
# 16 s), and so also stands for the plain install.
$(VENV)/.stamp-test: pyproject.toml | $(PY)
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e ".[test,ray]"
	touch $(VENV)/.stamp-install $@

# JupyterHub's proxy for tests/browser/test_jupyterhub.py, from the npm registry like the extension's build tools.
CHP_VERSION := 5.3.0
$(VENV)/.stamp-chp: | $(PY)
	npm install --silent --no-audit --no-fund --prefix $(VENV)/node configurable-http-proxy@$(CHP_VERSION)
	$(VENV)/node/node_modules/.bin/configurable-http-proxy --version
	touch $@

install: $(VENV)/.stamp-install $(VENV)/.stamp-labext
install-test: $(VENV)/.stamp-test $(VENV)/.stamp-labext $(VENV)/.stamp-chp

# Debian's Chromium drives the browser tests (Playwright cannot download browsers offline).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "installing Debian's chromium"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; \
	fi

lab: install
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(ROOT_ARGS) $(LAB_ARGS)

# One widget as an app, code hidden: `make app NAME=filter_designer` (the names are notebooks/apps/*.ipynb).
# A class: `make app NAME=... VOILA_ARGS="--no-browser --port=8866 --Voila.ip=0.0.0.0"`.
NAME ?= filter_designer
VOILA_ARGS ?=
app: install
	$(VENV)/bin/voila notebooks/apps/$(NAME).ipynb $(VOILA_ARGS)

test: install-test chromium
	$(MAKE) --no-print-directory lint docs-check test-unit test-notebooks test-browser

# The documentation site (mkdocs-material + mkdocstrings, mkdocs.yml): `make docs` builds it into site/;
# docs-check fails on a broken reference or link (--strict) and runs the docstrings' Examples (doctest).
DOCTEST_MODULES ?= $(shell grep -rl --include='*.py' '^ *>>> ' cnnwidgets)
docs: install-test
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-check: install-test
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet
	$(PY) -m pytest --doctest-modules -p no:cacheprovider -q $(DOCTEST_MODULES)

# ruff (configured in pyproject.toml): lint and formatting, enforced by CI.
lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test-unit: install-test
	$(PY) -m pytest tests --ignore=tests/browser $(PYTEST_ARGS)

# Property-based fuzzing of the engine (tests/engine/test_fuzz.py): test-unit runs it with few, fixed examples;
# this runs many more, random ones (FUZZ_EXAMPLES per function, default 2000), and prints how many were tried.
fuzz: install-test
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest tests/engine/test_fuzz.py --hypothesis-show-statistics $(PYTEST_ARGS)

test-notebooks: install-test
	$(PY) -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks $(PYTEST_ARGS)

test-browser: install-test chromium
	CNNWIDGETS_REQUIRE_BROWSER=1 $(PY) -m pytest tests/browser $(PYTEST_ARGS)

# bench_retrieval's held-out photos (--cases everyday) ship with foolbox, read as files, never imported.
bench: install
	$(PIP) install --quiet --no-deps foolbox==3.3.4
	for f in bench/bench_*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info cnnwidgets/labextension labextension/lib labextension/node_modules
