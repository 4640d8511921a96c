# Every target creates .venv when it is missing and is safe to run again.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
SHARED_DATA ?= ../shared/data
DEMO_DIR ?= runs/demo

.PHONY: install demo test

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: install
	@if [ -d "$(SHARED_DATA)" ]; then \
	  $(BIN)/cachetune prepare --source conala --input $(SHARED_DATA)/programming/conala-train.json \
	    --domain programming --output $(DEMO_DIR)/prepare --max-queries 600; \
	else \
	  echo "$(SHARED_DATA) not found: reading CoNaLa from the Hugging Face Hub"; \
	  $(BIN)/cachetune prepare --source hf --input codeparrot/conala-mined-curated \
	    --domain programming --output $(DEMO_DIR)/prepare --max-queries 600; \
	fi

test: install
	$(BIN)/python -m pytest
