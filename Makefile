# The two commands: `make serve` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1:8000

.PHONY: serve test floors lint typecheck layers lock bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Installed from the locks, every file checked against its hash (docs/security.md,
# section 11); hookline itself goes on top without resolving anything again.
$(VENV)/.installed: $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml requirements-test.lock
	$(BIN)/pip install -q --require-hashes -r requirements-test.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@ $(VENV)/.installed

# Refresh the locks after editing pyproject.toml's dependencies: pins already in a lock
# stay unless UPGRADE=1 (then everything moves to its newest release). The locks are
# for CI's Python 3.11 on x86_64 Linux. uv lives in a throwaway venv of its own.
UV_VENV ?= /tmp/hookline-uv
UV_COMPILE = $(UV_VENV)/bin/uv pip compile pyproject.toml --quiet --generate-hashes \
	--python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	--custom-compile-command "make lock" $(if $(UPGRADE),--upgrade)
lock:
	test -x $(UV_VENV)/bin/uv || ($(PYTHON) -m venv $(UV_VENV) && $(UV_VENV)/bin/pip install -q uv)
	$(UV_COMPILE) -o requirements.lock
	$(UV_COMPILE) --extra test -o requirements-test.lock

# An installed package older than its floor in pyproject.toml (a floor raised past a
# CVE, a stale venv or lock) fails the run.
floors: $(VENV)/.installed-test
	$(BIN)/python scripts/check_floors.py --extra test

# Local stand-ins for the examples' secrets and endpoints; set your own to override.
export GITHUB_WEBHOOK_SECRET ?= dev-github-secret
export GITLAB_WEBHOOK_TOKEN ?= dev-gitlab-token
export SLACK_SIGNING_SECRET ?= dev-slack-secret
export CRM_WEBHOOK_TOKEN ?= dev-crm-token
export IOT_DEVICE_TOKEN ?= dev-iot-token
export WECOM_TOKEN ?= dev-wecom-token
export WECOM_ENCODING_AES_KEY ?= jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C
export WECOM_CORP_ID ?= dev-wecom-corp
export DINGTALK_APP_SECRET ?= dev-dingtalk-secret
export FEISHU_VERIFICATION_TOKEN ?= dev-feishu-token
export FEISHU_ENCRYPT_KEY ?= dev-feishu-encrypt-key
export DEPLOY_URL ?= http://127.0.0.1:9000/deploy
export CHAT_WEBHOOK_URL ?= http://127.0.0.1:9000/chat
export ALERT_URL ?= http://127.0.0.1:9000/alert

# `make serve` serves a copy of examples/ made in var/examples/: what the admin API or
# the UI changes (disable, apply, delete) is written to the copy, never to tracked files.
# An example changed in the repo since it was copied (newer than its copy) is copied again.
SERVED := var/examples
SERVED_FILES := $(SERVED)/hookline.yaml \
	$(patsubst examples/%,$(SERVED)/%,$(wildcard examples/workflows/*.yaml))

$(SERVED)/%: examples/%
	@mkdir -p $(@D)
	cp $< $@

.PHONY: served-examples
served-examples: $(SERVED_FILES)

serve: $(VENV)/.installed served-examples
	$(BIN)/hookline serve --config $(SERVED)/hookline.yaml --bind $(HOST) --db var/hookline.db

lint: $(VENV)/.installed-test
	$(BIN)/ruff check hookline tests benchmarks
	$(BIN)/ruff format --check hookline tests benchmarks

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

# The import-linter contracts of pyproject.toml: the packages import one way.
layers: $(VENV)/.installed-test
	$(BIN)/lint-imports

# PostgreSQL: a throwaway cluster for the run (installed from Debian's packages when
# missing); where none can be had, its tests are skipped with the reason.
# The suite on every core; PYTEST_WORKERS= runs it in one process.
PYTEST_WORKERS ?= -n auto --dist loadfile
test: $(VENV)/.installed-test floors lint typecheck layers
	test -x /usr/bin/chromium || sh scripts/install-chromium.sh
	sh scripts/postgres.sh run $(BIN)/pytest $(PYTEST_WORKERS)

$(VENV)/.installed-bench: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@ $(VENV)/.installed-test $(VENV)/.installed

# Every scenario, baseline and peer (a few minutes); results in benchmarks/results/,
# the summary and charts published to benchmarks/README.md. BENCH_ARGS adds options.
bench: $(VENV)/.installed-bench
	command -v wrk >/dev/null || benchmarks/install-wrk.sh || echo "no wrk: using the built-in generator"
	$(BIN)/python -m benchmarks --publish $(BENCH_ARGS)

# The CI smoke run: every scenario for a second or so; asserts nothing about speed.
bench-quick: $(VENV)/.installed-bench
	$(BIN)/python -m benchmarks --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache .import_linter_cache
