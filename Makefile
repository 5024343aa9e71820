# Set-up and everyday commands. `make test` and `make demo` work on a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-slow demo bench lint clean

install: $(STAMP)

# torch/torchvision are pinned here only for this CPU machine's local wheels; pyproject keeps ranges.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c "import torch, torchvision" 2>/dev/null || $(BIN)/pip install -q "torch==2.14.1" "torchvision==0.29.1" || $(BIN)/pip install -q "torch>=2.4" "torchvision>=0.19"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q -x --durations=10

test-slow: install
	$(BIN)/python -m pytest -q -m slow

# CycleGAN on the built-in photo <-> painting set: a short CPU run, then its test photos translated into one grid.
demo: install
	rm -rf runs/demo-cyclegan
	$(BIN)/ganapps cyclegan train --preset fast --steps 300 --ngf 16 --ndf 16 --use-amp --out runs/demo-cyclegan
	$(BIN)/ganapps cyclegan translate "$$($(BIN)/python -m ganapps.recipes.cyclegan_builtin --print-dir)/testA" \
		--model runs/demo-cyclegan --out runs/demo-cyclegan/translated --grid runs/demo-cyclegan/grid.png
	$(BIN)/ganapps cyclegan translate "$$($(BIN)/python -m ganapps.recipes.cyclegan_builtin --print-dir)/testA" \
		--out runs/demo-cyclegan/shipped --grid runs/demo-cyclegan/shipped.png
	@echo "demo: the 300-step run's translations in runs/demo-cyclegan/grid.png, the shipped model's (same photos) in runs/demo-cyclegan/shipped.png"

# Every benchmarks/bench_*.py in turn (`python -m benchmarks --list`: cyclegan, engine, medical, methods, painting,
# recipes, video, vidtrans); some of them, with options: make bench BENCH="methods -- --minutes 2,4"
BENCH ?=
bench: install
	$(BIN)/python -m benchmarks $(BENCH)

lint: install
	$(BIN)/ruff check ganapps tests data_recipes benchmarks setup.py

clean:
	rm -rf runs .pytest_cache
