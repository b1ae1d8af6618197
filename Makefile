# The companion's entry points. Everything runs from the project's own virtual environment (.venv).
#   make test                      install if needed, run every test (CI runs this), the slowest listed at the end
#   make test-fast                 the tests not marked `slow` (no real data, notebooks, zoo builds or claims)
#   make lint                      ruff: the stated rule set and the formatter's check (CI runs it first)
#   make figures PROFILE=quick     run notebooks/*.ipynb in order (papermill), writing results/ and figures
#   make figures WORKERS=4         ... after building the profile's zoo with 4 Ray workers (or RAY_ADDRESS=auto)
#   make zoo PROFILE=quick WORKERS=2   only build the zoo (every model and CUL run), with a progress bar
#   make bench PROFILE=quick       our training loop vs. the official-style loop (results/benchmarks.csv)
#   make data                      put CIFAR-10 into DATA_DIR
#   make lab [LAB_PORT=8888]       JupyterLab on notebooks/ (as a user or as root), its URL printed first
#   make docs                      the site, offline, into site/: the README, docs/*.md, the executed notebooks
PROFILE ?= quick
DEVICE ?= auto
DATA_DIR ?= data
CACHE_DIR ?= cache
SHARED ?= ../shared
PYTHON ?= python3
TORCH ?= torch==2.14.1 torchvision==0.29.1
WORKERS ?= 0
LAB_PORT ?= 8888
LAB_ARGS ?=
RAY_ADDRESS ?=
THREADS ?=
FANOUT := --workers $(WORKERS) $(if $(RAY_ADDRESS),--address $(RAY_ADDRESS)) $(if $(THREADS),--threads $(THREADS))

VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
CIFAR_TAR := $(SHARED)/data/cifar10-jpg.tar.gz

.PHONY: venv install test test-fast test-long lint figures zoo bench lab docs data clean-cache

venv install: $(VENV)/.installed

# A stamp, so a second run costs nothing until pyproject.toml changes. torch first and pinned: it is the
# large download and the version the results were made with (any recent torch works). The `ray` extra is
# installed too, for WORKERS=N and for the tests of the fan-out; without WORKERS nothing imports it. The `text`
# extra (transformers, datasets, the offline MiniLM) is for the text track and its tests; `lab` and `docs` are
# there for the tests of `make lab` and `make docs` (the browser test also needs Chromium: .ci/run installs it).
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(TORCH)
	$(PIP) install -e '.[dev,ray,text,lab,docs]'
	touch $@

# `make lab` installs what the notebooks and Lab need (the package with its text extra for notebook 09, JupyterLab,
# ipywidgets for the progress bars), not the test tools; `make docs` the package and MkDocs. Where `make test` has
# installed everything, pip finds each requirement met.
$(VENV)/.lab-installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(TORCH)
	$(PIP) install -e '.[lab,text]'
	touch $@

$(VENV)/.docs-installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(TORCH)
	$(PIP) install -e '.[docs]'
	touch $@

test: $(VENV)/.installed
	@echo "make test: every test but those marked long: the slow ones included (real CIFAR-10 at a 10k subset, every notebook at smoke, the zoo's builds, the claims); make test-fast skips the slow ones, make test-long runs the long ones (the full quick recipe on real CIFAR-10)"
	SHARED=$(SHARED) $(PY) -m pytest -q -m "not long" --durations=20

test-fast: $(VENV)/.installed
	SHARED=$(SHARED) $(PY) -m pytest -q -m "not slow and not long" --durations=10

test-long: $(VENV)/.installed
	SHARED=$(SHARED) $(PY) -m pytest -q -m long --durations=10

# the rule set and the formatter live in pyproject.toml ([tool.ruff]); `ruff format .` and `ruff check --fix .`
# mend most of what this reports
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

figures: $(VENV)/.installed
	$(PY) -m ebyd_utils.run_notebooks --profile $(PROFILE) --device $(DEVICE) --data-dir $(DATA_DIR) $(FANOUT)
	$(PY) -m ebyd_utils.report

zoo: $(VENV)/.installed
	$(PY) -m ebyd_utils.zoo --profile $(PROFILE) --device $(DEVICE) --data-dir $(DATA_DIR) --cache-dir $(CACHE_DIR) $(FANOUT)

bench: $(VENV)/.installed
	$(PY) benchmarks/bench.py --profile $(PROFILE) --device $(DEVICE) --data-dir $(DATA_DIR) \
		--cache-dir $(CACHE_DIR) $(BENCH_ARGS)

# python -m ebyd_utils.lab adds --allow-root where it runs as root (JupyterLab refuses root without it), makes the
# token and prints the URL; LAB_ARGS go to JupyterLab, e.g. LAB_ARGS="--ip 0.0.0.0 --no-browser" in a container
lab: $(VENV)/.lab-installed
	$(PY) -m ebyd_utils.lab --port $(LAB_PORT) --root-dir notebooks $(LAB_ARGS)

# the site (MkDocs + mkdocs-jupyter, mkdocs.yml; docs/running.md says what is in it and why MkDocs), offline, into site/
docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site
	@echo "make docs: the site is in site/ (open site/index.html in a browser)"

# CIFAR-10 for the quick and paper profiles: the JPEG copy beside a developer checkout when present;
# otherwise torchvision downloads it into DATA_DIR on first use when online.
data:
	@if [ -d "$(DATA_DIR)/cifar10-jpg/train" ] || [ -d "$(DATA_DIR)/train" ]; then \
		echo "CIFAR-10 is already in $(DATA_DIR)/"; \
	elif [ -f "$(CIFAR_TAR)" ]; then \
		mkdir -p "$(DATA_DIR)" && tar xzf "$(CIFAR_TAR)" -C "$(DATA_DIR)" && \
		echo "extracted $(CIFAR_TAR) into $(DATA_DIR)/cifar10-jpg/ (label results 'CIFAR-10 (JPEG copy)')"; \
	else \
		echo "No $(CIFAR_TAR). To get CIFAR-10 into $(DATA_DIR)/, either:"; \
		echo "  - go online: the first run with DATA_DIR=$(DATA_DIR) downloads it (torchvision), or now:"; \
		echo "    $(PY) -c \"from torchvision.datasets import CIFAR10; [CIFAR10('$(DATA_DIR)', train=t, download=True) for t in (True, False)]\""; \
		echo "  - or put images in the ImageFolder layout: $(DATA_DIR)/{train,test}/<class>/*.png"; \
	fi
	@# the text track (notebook 09): the local copies beside a developer checkout; online, the hub serves them
	@if [ -d "$(DATA_DIR)/text/sst2" ]; then echo "text data is already in $(DATA_DIR)/text/"; \
	elif [ -d "$(SHARED)/data/text/sst2" ]; then mkdir -p "$(DATA_DIR)/text" && \
		cp -r $(addprefix $(SHARED)/data/text/,sst2 offenseval agnews imdb poisoned style-transfer) "$(DATA_DIR)/text/" && \
		echo "copied the text datasets and released paraphrases into $(DATA_DIR)/text/"; \
	else echo "No $(SHARED)/data/text: notebook 09 loads its dataset from the hub (datasets.load_dataset) when online"; fi

# Trained models, exposures and decoded datasets; all are rebuilt on demand.
clean-cache:
	rm -rf $(CACHE_DIR)
