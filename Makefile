# retail_workbench — `make demo` runs the main job, `make test` is the gate.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.rwb-installed
TORCH_INDEX ?=  # extra index serving torch==2.13.0+cpu, when the configured one does not
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install browser demo test lab bench sync export clean-venv

install: $(STAMP)
	@java -version >/dev/null 2>&1 || echo "note: no Java runtime found (java -version): the Spark" \
		"engine (engine='spark', --engine spark) needs Java 17; install it with" \
		"'apt-get install openjdk-17-jre-headless' (or set JAVA_HOME). Everything else works without it."

# Re-runs only when the pinned stack or the package metadata changes; a second `make install` is a no-op.
$(STAMP): settings.ini setup.py pyproject.toml requirements.lock tools/install_lightfm.py
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run 'make PYTHON=/path/to/python3.11'"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c requirements.lock pip setuptools wheel Cython numpy scipy
	$(BIN)/python tools/install_lightfm.py
	$(BIN)/python -m pip install -q -c requirements.lock --no-build-isolation \
		$(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name retail-workbench \
		--display-name "Python (retail-workbench)" >/dev/null
	@touch $(STAMP)
	@echo "retail_workbench installed in $(VENV) (kernel: retail-workbench)"

# Debian's Chromium for the browser tests (JupyterLab dashboards under Playwright). Installed with
# apt when running as root; otherwise those tests skip and say why.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium for the browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
			|| echo "chromium could not be installed: browser tests will skip"; \
	fi

demo: install
	$(BIN)/rwb demo

test: install browser
	$(BIN)/python tools/check_sync.py
	$(BIN)/python -m pytest tests -n 2 --dist loadgroup -p no:cacheprovider --durations=40

lab: install
	$(BIN)/jupyter lab --notebook-dir=. $$([ "$$(id -u)" = 0 ] && echo --allow-root) nbs templates

bench: install
	$(BIN)/python benchmarks/run.py

# Clean the notebooks, then regenerate the library and README from them (run before committing).
export: install
	$(BIN)/nbdev_clean
	$(BIN)/nbdev_export
	$(BIN)/python tools/make_readme.py

clean-venv:
	rm -rf $(VENV)
