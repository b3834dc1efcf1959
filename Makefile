# Two commands set everything up on a fresh machine with Python 3.11:
#   make book   build the book into _build/html (and the student kit it links to)
#   make test   install the test extras and run the whole suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.stamp

.PHONY: book kit test lint bench clean lab grade release hub

$(STAMP)-runtime: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==26.3 setuptools==84.2.1
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(STAMP)-test: $(STAMP)-runtime requirements-test.txt
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $@

book: $(STAMP)-runtime kit
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "The book is built: open file://$(CURDIR)/_build/html/index.html"

# The browser tests drive Debian's Chromium; without it they fail (never skip) and say why.
/usr/bin/chromium:
	-apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# Grading runs every student's kernel in a bubblewrap sandbox; without it the grader refuses to
# run (unless told --unsandboxed) and says why (autograder/README.md). The tests also grade as a
# normal user: they create one (useradd) and make the clone and the venv's paths traversable.
/usr/bin/bwrap:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap

# Grading through a queue (autograder/queue.py) uses Redis as broker; its tests start their own
# redis-server on loopback, so the Debian package's own service is stopped and disabled.
/usr/bin/redis-server:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
	-service redis-server stop
	-systemctl disable --now redis-server


# The class hub's proxy (deploy/jupyterhub/README.md): configurable-http-proxy from npm, every
# version pinned by deploy/jupyterhub/package-lock.json, installed next to the hub's configuration.
HUB_PROXY := deploy/jupyterhub/node_modules/.bin/configurable-http-proxy
/usr/bin/npm:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm

$(HUB_PROXY): deploy/jupyterhub/package.json deploy/jupyterhub/package-lock.json /usr/bin/npm
	cd deploy/jupyterhub && npm ci --no-audit --no-fund --loglevel=error
	touch $@

hub: $(STAMP)-runtime $(HUB_PROXY)

test: $(STAMP)-test /usr/bin/chromium /usr/bin/bwrap /usr/bin/redis-server $(HUB_PROXY)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lint: $(STAMP)-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check minidl tests benchmarks

bench: $(STAMP)-test
	$(BIN)/python benchmarks/bench_step.py

# Homework: students work in JupyterLab; the instructor releases and grades (autograder/README.md).
lab: $(STAMP)-runtime
	$(BIN)/jupyter lab --notebook-dir=exercises

# What students get: _build/kit/ and _build/kit.zip (autograder/kit.py); the book links to it.
kit: $(STAMP)-runtime
	$(BIN)/python -m autograder kit --out _build/kit

release: $(STAMP)-runtime
	$(BIN)/python -m autograder release

# As root or as a normal user (the sandbox tier is the strongest the machine offers: see
# autograder/README.md); GRADING_DEMO=DIR grades into a folder of yours if the clone is not.
GRADING_DEMO ?= _build/grading-demo
grade: $(STAMP)-runtime /usr/bin/bwrap
	$(BIN)/python -m autograder demo --out $(GRADING_DEMO)

clean:
	rm -rf _build
