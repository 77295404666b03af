# Conveyor: `make run` sets everything up and runs the demo; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: run start push stop test lint format unit check system system-tests venv clean requirements

run: system venv            ## set up, start master+worker+repository, build the demo push
	$(PY) -m ops run

start: system venv          ## set up and start the services only
	$(PY) -m ops start

push: venv                  ## deliver one more signed push of the demo app and wait for it
	$(PY) -m ops push

stop: venv                  ## stop what run/start started (by pid)
	$(PY) -m ops stop

test: system-tests venv     ## lint and format check, unit tests, then the integration tests, three modules at a time
	$(PY) -m ruff check . worker/bin/conveyor-install-check worker/bin/conveyor-attest
	$(PY) -m ruff format --check . worker/bin/conveyor-install-check worker/bin/conveyor-attest
	$(PY) -m pytest tests/unit
	$(PY) -m pytest -n 3 --dist loadfile --durations=15 tests/integration

lint: venv                  ## ruff on Conveyor's own code (ruff.toml): lint and format check
	$(PY) -m ruff check . worker/bin/conveyor-install-check worker/bin/conveyor-attest
	$(PY) -m ruff format --check . worker/bin/conveyor-install-check worker/bin/conveyor-attest

format: venv                ## ruff format: write the code's layout (what make test checks)
	$(PY) -m ruff format . worker/bin/conveyor-install-check worker/bin/conveyor-attest

unit: venv                  ## unit tests only (seconds)
	$(PY) -m pytest tests/unit

check: venv                 ## buildbot checkconfig on pipeline.toml
	$(PY) -m ops check

system:                     ## Debian packages (apt-get, with sudo when not root)
	bin/install-system-packages

system-tests:               ## the same, and what only the tests need (headless Chromium)
	bin/install-system-packages --tests

venv: $(VENV)/.installed

$(VENV)/.installed: requirements/test.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/test.txt
	touch $@

requirements: venv          ## compile requirements/*.txt (pins, hashes) from their .in files
	cd requirements && for name in master worker test; do \
	  ../$(PY) -m uv pip compile --quiet --generate-hashes --python-version 3.11 \
	    $$name.in -o $$name.txt || exit 1; done

clean: stop                 ## stop, then remove all runtime state (var/)
	rm -rf var

# --- releases (bin/conveyor): make promote PACKAGE=snowbird FROM=snowbird-staging TO=snowbird [VERSION=…]
PACKAGE ?= snowbird
FROM    ?= snowbird-staging
TO      ?= snowbird
DIST    ?= snowbird

.PHONY: promote rollback status history
promote: venv               ## promote PACKAGE from FROM to TO (VERSION: default the newest)
	bin/conveyor promote $(PACKAGE) $(FROM) $(TO) $(if $(VERSION),--version $(VERSION))

rollback: venv              ## put DIST back to its previous state (STATE=n for another)
	bin/conveyor rollback $(DIST) $(if $(STATE),--to $(STATE))

status: venv                ## what each distribution has, and the commits waiting to be promoted
	bin/conveyor status

history: venv               ## every state DIST has had
	bin/conveyor history $(DIST)

# --- notifications: break the demo's build, show the mail; fix it, show the "fixed" mail
.PHONY: demo-red
demo-red: system venv       ## push a failing test to the demo app, then its fix; print both mails
	$(PY) -m ops red
