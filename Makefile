# The two commands of the README: `make demo` and `make test`. Everything they need is
# installed here: a Python 3.11 virtualenv in .venv, Java 17 and Maven if missing, Kafka's jars.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lock java chromium demo test test-unit fuzz check bench bench-anomalies bench-scale-out bench-soak \
	report-example clean

# The locked versions (requirements-dev.lock: the package's and its development tools'), then
# the package itself on top, without resolving again: every install gets the tested versions.
$(STAMP): pyproject.toml requirements-dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
		{ echo "vungtau-ops needs Python 3.11 (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# After a change of pyproject.toml's dependencies: re-resolve both locks, keeping every pin that
# still fits (requirements.lock: what the package needs, for an image; -dev: plus the tools).
LOCK := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --no-header \
	--annotation-style line
lock: $(STAMP)
	$(LOCK) -o requirements.lock
	$(LOCK) --extra dev -c requirements.lock -o requirements-dev.lock

java:
	@command -v java >/dev/null && command -v mvn >/dev/null || { \
		echo "installing Java 17 and Maven (apt-get)"; \
		apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless maven; }

# The report's test opens the page in Debian's Chromium (Playwright drives it; no download).
chromium:
	@test -x /usr/lib/chromium/chromium || command -v chromium >/dev/null || { \
		echo "installing Chromium (apt-get)"; \
		apt-get update -qq && apt-get install -y -qq chromium fonts-dejavu-core; }

install: $(STAMP) java chromium

demo: install
	$(BIN)/vtops demo

test: install
	$(BIN)/vtops kafka start
	$(BIN)/pytest -q

test-unit: install
	$(BIN)/pytest -q -m "not integration"

# The fuzzer's long run (the suite runs 75 batches): FUZZ_EXAMPLES batches through one worker,
# failures shrunk; VTOPS_FUZZ_SEED=<seed it printed> replays a run.
FUZZ_EXAMPLES ?= 1000
fuzz: install
	$(BIN)/vtops kafka start
	VTOPS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) VTOPS_FUZZ_SHRINK=1 $(BIN)/pytest -q -s tests/fuzz

check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

bench: install
	$(BIN)/vtops kafka start
	$(BIN)/python -m benchmarks.throughput --events 1000000 --runs 3
	$(BIN)/python -m benchmarks.latency --rate 2000 --seconds 60 --runs 3
	$(BIN)/python -m benchmarks.rekeyed --events 200000 --runs 3

# A1–A7: a week of 16 cameras' traffic, injected and control, through three worker runs, on the
# simulator's own city from its priors, then on a city unlike the priors (issue 18) whose
# baselines are learned from two weeks of its history by `vtops baselines refresh`.
bench-anomalies: install
	$(BIN)/vtops kafka start
	$(BIN)/python -m benchmarks.anomalies --cameras 16 --days 7 --per-kind 8
	$(BIN)/python -m benchmarks.anomalies --cameras 16 --days 7 --per-kind 8 --seed 2 --perturb 11 \
		--history-weeks 2

# P9: 1, 2, 3 workers on the local ClickHouse server against one on the embedded store, and
# the rebalance pauses when a worker joins and when one is SIGKILLed (~5 min).
bench-scale-out: install
	$(BIN)/vtops kafka start
	$(BIN)/python -m benchmarks.scale_out --events 1000000 --rekeyed-events 200000

# P5's drift and P1's "lag not growing": one worker fed 20,000 camera events/s for 20 minutes,
# its RSS and lag sampled every 10 s (~23 min).
bench-soak: install
	$(BIN)/vtops kafka start
	$(BIN)/python -m benchmarks.soak --rate 20000 --minutes 20

# docs/report-example.png: the report of a demo hour (camera traffic thinned to 50 events per
# city second, so it takes a minute), its first 1000 × 2600 pixels as Chromium draws them.
REPORT_EXAMPLE := var/report-example
report-example: install
	$(BIN)/vtops kafka start
	VTOPS_DATA_DIR=$(REPORT_EXAMPLE) VTOPS_TOPIC_PREFIX=report-example. VTOPS_APP_ID=report-example \
		$(BIN)/vtops demo --camera-rate 50
	/usr/lib/chromium/chromium --headless --no-sandbox --hide-scrollbars --window-size=1000,2600 \
		--screenshot=docs/report-example.png $(REPORT_EXAMPLE)/report.html

clean:
	-$(BIN)/vtops kafka stop
	-$(BIN)/vtops clickhouse stop
	rm -rf var
