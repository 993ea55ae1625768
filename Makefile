# The two commands a new user needs: `make eval` (the main job) and `make test` (all tests).
# Every target sets up what is missing first; a second run skips what is already in place.
SHELL := /bin/bash
HARNESS := .venv/bin/harness
PY := .venv/bin/python
BOT_PY := .venv-bot/bin/python

.PHONY: eval gate review probe setup system harness-env bot-env intents model bot retrain experiment experiment-linear test test-harness test-bot test-integration lint bench bench-bot bench-harness bench-nlu bench-hwu64 bench-hwu64-finetune bench-hwu64-heads bench-intents bench-rephrase bench-review bench-mask bench-gate bench-intervals bench-production bench-probe clean

## The main job: replay every eval set through the reference bot and print the KPI scorecard.
## Trains the bot if its data changed, starts it on loopback, stops it afterwards (also on failure or Ctrl-C).
eval: setup
	@$(HARNESS) intents build
	@$(HARNESS) run --serve-bot

## The release gate on the reference bot: a fresh eval run, judged by experiments/gate.yml against
## experiments/baseline. Writes gate.xml (JUnit), gate.md and gate.json into the run folder.
gate: setup
	@$(HARNESS) intents build
	@$(HARNESS) run --serve-bot --no-mlflow
	@$(HARNESS) gate

## QA review: load the latest run's flagged and sampled dialogs (masked) into the review database, then serve the
## review app on http://127.0.0.1:8050/ (Ctrl-C stops it). First time: add accounts with
## `.venv/bin/harness review add-user NAME --role lead` (or analyst). See README "QA review".
review: harness-env
	@$(HARNESS) review load
	@$(HARNESS) review serve --port $(or $(PORT),8050)

## System uptime as customers see it: serve the reference bot and run the probe conversations of
## experiments/probe.yml every minute until Ctrl-C or SIGTERM; each cycle prints the probes' verdicts, uptime.v1 and any
## incident; Prometheus metrics on http://127.0.0.1:9464/metrics (README "System uptime"). To probe a bot that runs
## elsewhere: `.venv/bin/harness probe --bot-url URL` (its token in $$REFERENCE_CHANNEL_TOKEN or bot.token_env).
probe: setup
	@$(HARNESS) intents build
	@$(HARNESS) probe --serve-bot

setup: harness-env bot-env

## Debian packages the tests need: chromium (review app end-to-end) and the PostgreSQL server (review store).
system:
	@scripts/setup_system.sh

harness-env:
	@scripts/setup_harness_env.sh

bot-env:
	@scripts/setup_bot_env.sh

## Regenerate the bot's NLU data from intents/ (the source of truth).
intents: harness-env
	@$(HARNESS) intents build

## Train the bot if its training inputs changed.
model: setup
	@$(HARNESS) bot train

## Serve the bot and the action server on 127.0.0.1 (trains first if needed); Ctrl-C stops both.
bot: setup
	@$(HARNESS) bot serve

## The bot trainer's loop: intents/ -> bot data -> train -> evaluate -> MLflow (linked runs, model version),
## with each KPI's change against the champion (the release gate's baseline).
retrain: setup
	@$(HARNESS) retrain

## Compare the NLU pipelines of experiments/nlu_pipelines.yml (cross-validation + eval sets, tracked in MLflow).
experiment: setup
	@$(HARNESS) experiment experiments/nlu_pipelines.yml

## The same without the DIET pipelines: the previous winner against the logistic-regression ones (about 15 minutes).
experiment-linear: setup
	@$(HARNESS) experiment experiments/nlu_pipelines_linear.yml

## All tests: unit tests in both environments, then the integration tests against the real servers.
test: setup system lint
	@$(HARNESS) intents build --check
	$(BOT_PY) -m pytest -q tests/bot
	$(PY) -m pytest -q tests/harness tests/integration

test-harness: harness-env
	$(PY) -m pytest -q tests/harness

test-bot: bot-env
	$(BOT_PY) -m pytest -q tests/bot

test-integration: setup
	$(PY) -m pytest -q tests/integration

lint: harness-env
	.venv/bin/ruff check harness tests bot/bankbot $(wildcard bench)
	.venv/bin/ruff format --check harness tests/harness tests/integration
	.venv/bin/mypy harness

## Benchmarks with committed results in bench/results/ (see bench/README.md).
bench: bench-bot bench-harness bench-nlu bench-hwu64 bench-intents bench-rephrase bench-review bench-mask bench-gate bench-intervals bench-production bench-probe

bench-bot: setup
	$(PY) bench/bot_bench.py

bench-harness: setup
	$(PY) bench/replay_overhead.py
	$(PY) bench/scoring_cost.py

bench-nlu: setup
	$(PY) bench/nlu_bench.py

## The bot's NLU pipeline against frozen MiniLM + logistic regression on HWU64 (../shared/data/hwu64; about 8 minutes).
bench-hwu64: setup
	$(PY) bench/hwu64_bench.py

## Does fine-tuning the MiniLM encoder end to end beat the bot's frozen-layer classifier on HWU64? (about 7 minutes)
bench-hwu64-finetune: setup
	$(BOT_PY) bench/hwu64_finetune.py

## Classifier heads on the frozen MiniLM's features, and its top layers fine-tuned, on HWU64 (about 10 minutes).
bench-hwu64-heads: setup
	$(BOT_PY) bench/hwu64_heads.py

## harness intents import and validate on a 10,000-row CSV (about 3 minutes).
bench-intents: harness-env
	$(PY) bench/intents_scale.py

bench-rephrase: setup
	$(PY) bench/rephrase_sweep.py

bench-review: setup
	$(PY) bench/review_queue.py

## Masking personal data: recall and over-masking per kind, the regexes before Presidio against today's.
bench-mask: setup
	$(PY) bench/masking_bench.py

## Production logs at scale: import of a synthetic Rasa tracker store, KPI scoring of 1M and 10M turns on DuckDB and
## Spark local mode side by side (needs Java 17: `make system`). Scratch stores go to $(BENCH_TMP) (default /tmp).
bench-production: harness-env system
	$(PY) bench/production_bench.py $(if $(BENCH_TMP),--scratch $(BENCH_TMP))

## The probe service over a long run: memory, scrapes, SIGTERM (20 minutes; `make probe` for the service itself).
bench-probe: harness-env
	$(PY) bench/probe_memory.py

bench-gate: setup
	$(PY) bench/gate_power.py

## Coverage of every printed 95% interval over p, support and clustering (about 15 minutes on 2 cores).
bench-intervals: harness-env
	$(PY) bench/interval_coverage.py

clean:
	rm -rf bot/models bot/.rasa bot/var runs
