# Two set-up commands (README): `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
# checkov lives apart: its pins are not the app's
TOOLS := .venv-tools
PY := $(VENV)/bin/python
PHOTOS ?= tests/data/photos
PORT ?= 8501
DEMO_CATALOG ?= $(CURDIR)/var/demo.db
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: venv demo index ui test lint bench fuzz taxonomy scenes clean chromium stack deploy compiled

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch
	$(PY) -m pip install --quiet -c constraints.txt -e '.[ui,dev,compile]'
	# the face detector's MTCNN weights (indexer/model/faces.py): the wheel's files only, without its
	# pins (old torch, Pillow, numpy) and its torchvision, which pixdex never imports
	$(PY) -m pip install --quiet --no-deps facenet-pytorch==2.6.0
	touch $@

# the compiled classifier for this machine (indexer/model/runtimes.py): fp32, and int8 calibrated on the
# bundled test photos; once per machine and torch version (about a minute each), in the user cache folder
# (again when the network, the runtimes or the vocabulary change: a package is keyed by them)
COMPILED_STAMP := $(VENV)/.compiled
compiled: $(COMPILED_STAMP)
$(COMPILED_STAMP): $(VENV)/.installed indexer/model/efficientnet.py indexer/model/runtimes.py \
		indexer/data/vocabulary.toml indexer/data/imagenet_taxonomy.json
	$(VENV)/bin/pixdex compile-model --device cpu
	$(VENV)/bin/pixdex compile-model --device cpu --int8 tests/data/photos tests/data/scenes tests/data/people
	touch $@

demo: venv compiled  ## index PHOTOS (default: the bundled test photos) and start the app
	$(VENV)/bin/pixdex --catalog sqlite:///$(DEMO_CATALOG) index $(PHOTOS) || test $$? -eq 1
	$(VENV)/bin/pixdex --catalog sqlite:///$(DEMO_CATALOG) search cat
	$(VENV)/bin/pixdex --catalog sqlite:///$(DEMO_CATALOG) ui --port $(PORT)

deploy: venv  ## deploy infra/aws to the environment ENV (test, staging, prod) with the SAM CLI
	@test -n "$(ENV)" || { echo "make deploy ENV=test|staging|prod" >&2; exit 2; }
	cd infra/aws && sam deploy --config-file samconfig.toml --config-env $(ENV)
	$(VENV)/bin/pixdex selftest --api "$$(aws cloudformation describe-stacks --stack-name pixdex-$(ENV) --query "Stacks[0].Outputs[?OutputKey=='ApiUrl'].OutputValue" --output text)" --token "$(TOKEN)"

$(TOOLS)/bin/checkov:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet checkov==3.3.30

stack: venv  ## the event-driven path on this machine: S3+SQS (moto), OpenSearch (osmem), indexer, API
	$(VENV)/bin/pixdex stack

test: venv chromium $(TOOLS)/bin/checkov  ## lint, check the import layers (pyproject.toml), run the whole suite
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	PIXDEX_E2E_REQUIRED=1 PIXDEX_CHECKOV=$(TOOLS)/bin/checkov $(PY) -m pytest -q

chromium:  ## the browser the e2e tests drive (Debian's chromium; installed when missing)
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@command -v chromium >/dev/null || { echo "chromium is needed for tests/e2e: apt-get install chromium" >&2; exit 1; }

fuzz: venv  ## the fuzz pass of make test with many more, fresh inputs (FUZZ_N, default 20000 per property)
	PIXDEX_FUZZ_EXAMPLES=$(or $(FUZZ_N),20000) $(PY) -m pytest -q -p no:cacheprovider tests/unit/test_fuzz.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

bench: venv compiled  ## benchmarks (not in the suite): labels on the validation set, indexing (N images), Lambda cold/warm, catalogues (CATALOG_N records), backfill (BACKFILL_N images, KEYS keys)
	$(PY) tests/bench/bench_labels.py  # recall and precision per word on the validation photos (fetched once)
	$(PY) tests/bench/bench_similar.py  # where "Similar images" stops (ui/image.py SIMILAR_CUTOFF)
	$(PY) tests/bench/bench_runtimes.py  # the classifier's runtimes side by side, and how far each strays
	$(PY) tests/bench/bench_metadata.py  # what reading EXIF costs the decode (on and off, one run)
	$(PY) tests/bench/bench_index.py --n $(or $(N),64)
	$(PY) tests/bench/bench_lambda.py --n 30
	$(PY) tests/bench/bench_catalog.py --n $(or $(CATALOG_N),20000) --n-sqlite 100000
	$(PY) tests/bench/bench_backfill.py --n $(or $(BACKFILL_N),160) --keys $(or $(KEYS),100000)
	$(PY) tests/bench/bench_ui.py --n 100000

taxonomy: venv  ## regenerate indexer/data/imagenet_taxonomy.json (needs Debian's wordnet-base)
	test -f /usr/share/wordnet/data.noun || (apt-get update -qq && apt-get install -y -qq wordnet-base)
	$(PY) scripts/build_taxonomy.py

scenes: venv  ## retrain the scene heads (indexer/data/scene_heads.json) on tests/bench/training's photos (fetched once)
	$(PY) scripts/train_scenes.py

clean:
	rm -rf $(VENV) $(TOOLS) var .pytest_cache .ruff_cache *.egg-info
