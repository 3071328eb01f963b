# The two commands a newcomer needs: `make run` and `make test`.
# Both create .venv on first use and reinstall only when pyproject.toml changes.

VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format install install-dev worker beat simulator clean

run: install ## Embedded default: migrate, seed the demo, serve on http://$(HOST):$(PORT)
	export SITE_URL="$${SITE_URL:-http://$(HOST):$(PORT)}"; \
	$(BIN)/python manage.py migrate --no-input -v 0 && \
	$(BIN)/python manage.py seed_demo && \
	exec $(BIN)/uvicorn portal.asgi:application --host $(HOST) --port $(PORT) --lifespan off --ws websockets-sansio

test: install-dev ## The whole suite against real PostgreSQL, Redis, Kafka (Tansu) and Chromium
	scripts/test.sh $(ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

WORKER_CONCURRENCY ?= 100

worker: install ## A Celery worker for both queues (needs REDIS_URL)
	$(BIN)/celery -A portal worker -Q inference,default -P threads -c $(WORKER_CONCURRENCY) -l info

beat: install ## Periodic jobs: the stale-run sweeper (needs REDIS_URL)
	$(BIN)/celery -A portal beat -l info

simulator: install ## The OpenAI-compatible simulator on http://127.0.0.1:9100/v1
	$(BIN)/python manage.py simulate_openai --port 9100 --tokens-per-second 30

install: $(VENV)/.installed-run
install-dev: $(VENV)/.installed-dev

$(BIN)/python:
	"$$(scripts/find-python)" -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed-run $@

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
