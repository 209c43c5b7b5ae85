# Two commands on a fresh machine: `make demo` and `make test`. Everything else is optional.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export ECOM_HOME ?= $(CURDIR)/.ecom
export DAGSTER_HOME ?= $(ECOM_HOME)/dagster_home
export MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK ?= true
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR ?= false
DEMO_EVENTS ?= 400000
DEMO_DAYS ?= 61
DEV_PORT ?= 3000

.PHONY: install demo test lint format dev bench serve app bench-api clean

# uv makes the install a matter of seconds; plain venv + pip is the fallback.
$(VENV)/.installed: pyproject.toml
	@if $(PYTHON) -m pip install -q uv >/dev/null 2>&1; then \
	  $(PYTHON) -m uv venv -q --allow-existing -p $(PYTHON) $(VENV) && \
	  $(PYTHON) -m uv pip install -q -p $(BIN)/python -e '.[test]'; \
	else \
	  $(PYTHON) -m venv $(VENV) && $(BIN)/pip install -q -e '.[test]'; \
	fi
	@touch $@

install: $(VENV)/.installed

demo: install  ## generate the default synthetic data and materialize the whole graph
	$(BIN)/ecom-assets generate --events $(DEMO_EVENTS) --days $(DEMO_DAYS) --out $(ECOM_HOME)/landing
	$(BIN)/ecom-assets run

test: install  ## run the test suite
	$(BIN)/python -m pytest

lint: install  ## ruff: lint and formatting, as CI checks them
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install  ## ruff: fix what can be fixed, then format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# `exec`: the recipe's shell becomes the launcher, which make's SIGTERM reaches. `ecom-assets dev` runs
# `dagster dev` so that SIGTERM/SIGINT stop it even when started in the background (docs/operations.md).
dev: install  ## the Dagster UI and daemon (schedule, sensors) on http://127.0.0.1:$(DEV_PORT) (default 3000)
	$(BIN)/ecom-assets init-home
	exec $(BIN)/ecom-assets dev -w workspace.yaml --host 127.0.0.1 --port $(DEV_PORT)

bench: install  ## landing -> gold at 20M events (several minutes)
	$(BIN)/python bench/bench_landing_to_gold.py

serve: install  ## the scoring API on http://127.0.0.1:8000 (docs at /docs) over the production models
	$(BIN)/ecom-assets serve --host 127.0.0.1 --port 8000

app: install  ## the growth team's Streamlit app on http://127.0.0.1:8501 (expects `make serve` running)
	$(BIN)/streamlit run ecom_assets/serving/app.py --server.address 127.0.0.1 --server.port 8501 \
	  --server.headless true --browser.gatherUsageStats false

bench-api: install  ## load test of the scoring API on loopback (starts its own server; needs trained models)
	$(BIN)/python bench/bench_api.py

clean:
	rm -rf $(ECOM_HOME)
