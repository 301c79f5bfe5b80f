# zoorepro — `make demo` (set up, run the mini DAG end to end, print the audit) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
STAMP := $(VENV)/.zoorepro-env
SNAKEMAKE := $(VENV)/bin/snakemake --cores all --rerun-incomplete
MINI_TABLES = $(shell $(PY) -m zoorepro tables --scale mini)
MINI_FIGURES = $(patsubst results/mini/%.csv,results/mini/report/%,$(MINI_TABLES))
REPORT := results/mini/report.html

.PHONY: env demo slurm-demo test audit report shape flops bench lint repro lock clean-mini dvc.yaml

# These machines set PYTHONDONTWRITEBYTECODE. The project's commands let Python write the bytecode
# caches of what they import (in .venv, and __pycache__ in the checkout, git-ignored): without them
# every step process compiles torch, transformers and paddle from source again. Caching on import
# compiles only what runs; compiling all 25,000 modules of site-packages at install (pip's way, or
# uv --compile-bytecode) took about 80 s of a fresh clone's two-minute `make env` here.
unexport PYTHONDONTWRITEBYTECODE

# The venv is (re)built when it is missing or older than the lock files. uv installs what pip would
# (same lock, same constraints, pip's configured package sources: scripts/uv_pip.py), in parallel
# and from its cache; pip itself only installs uv. Its last step imports the heavy packages the
# steps use, two processes at a time, so their bytecode is cached before the first parallel run.
UV_VERSION := 0.13.9
UV_PIP := $(PY) scripts/uv_pip.py install --quiet
WARM_IMPORTS := "import torch, torchvision, onnxsim; from transformers import LlavaNextVideoForConditionalGeneration, LlavaNextVideoProcessor" \
	"import paddle, onnx, onnxruntime, snakemake.cli, dvc.cli, pandas, av, PIL.Image, lmdb"
env: $(STAMP)
$(STAMP): envs/requirements.lock envs/requirements-nodeps.txt pyproject.toml scripts/uv_pip.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24" "uv==$(UV_VERSION)"
	$(UV_PIP) -r envs/requirements.lock -c envs/constraints.txt
	$(UV_PIP) --no-deps -r envs/requirements-nodeps.txt
	$(UV_PIP) --no-deps --no-build-isolation -e .
	printf '%s\0' $(WARM_IMPORTS) | xargs -0 -P 2 -n 1 $(PY) -W ignore -c
	touch $@

# From scratch every time (--forceall): committed mini tables must not pass for a run.
demo: env
	@mkdir -p logs
	set -o pipefail; $(SNAKEMAKE) --forceall $(MINI_TABLES) $(MINI_FIGURES) 2>&1 | tee logs/demo.log \
		| grep --line-buffered -E '^(local)?rule [a-z_]+:|^[0-9]+ of [0-9]+ steps'
	@echo "demo: $$(grep -Eo '[0-9]+ of [0-9]+ steps' logs/demo.log | tail -1 | cut -d' ' -f1) jobs ran from scratch for $(words $(MINI_TABLES)) mini tables (log: logs/demo.log)"
	$(PY) -m zoorepro audit

# The mini tables through SLURM (profiles/slurm: every heavy or chip step a SLURM job) on a one-node
# cluster of this machine: as root, installs Debian's slurm-wlm and munge if missing, starts munged,
# slurmctld and slurmd (zoorepro/slurm_cluster.py), runs, and stops exactly the daemons it started.
# On a real cluster skip the cluster part: snakemake --profile profiles/slurm <tables>.
SLURM_STATE ?= /var/tmp/zoorepro-slurm
slurm-demo: env
	@mkdir -p logs
	$(PY) -m zoorepro.slurm_cluster start --state $(SLURM_STATE)
	set -o pipefail; $(VENV)/bin/snakemake --profile profiles/slurm --slurm-init-seconds-before-status-checks 2 \
		--forceall $(MINI_TABLES) 2>&1 | tee logs/slurm-demo.log | grep --line-buffered -E 'SLURM jobid|^localrule|^[0-9]+ of [0-9]+ steps'; \
		rc=$$?; $(PY) -m zoorepro.slurm_cluster stop --state $(SLURM_STATE); exit $$rc
	$(PY) -m zoorepro audit

# Two pytest-xdist workers, a test module each at a time (module fixtures are built once), in the
# order tests/conftest.py sets (pytest_collection_modifyitems); the one cold build of the mini DAG
# runs beside them at a higher CPU priority and is shared (tests/conftest.py, mini_dag, mini_stage).
TEST_WORKERS ?= 2
test: env
	$(PY) -m pytest -q -rs -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

audit: env
	$(PY) -m zoorepro audit

# Snakemake's HTML report of the mini tables: per table the claims (figure and table), throughput and
# latency against batch size with the claimed points, agreement, planted claims, provenance; the rule
# graph and run times. Builds what is missing or out of date first (the figures, or on a fresh clone
# the mini DAG). One self-contained file: no network needed to open it.
report: env
	$(SNAKEMAKE) $(MINI_TABLES) $(MINI_FIGURES)
	$(SNAKEMAKE) --report $(REPORT) $(MINI_TABLES) $(MINI_FIGURES)
	@echo "report: $(REPORT)"

# Shape scale: the real architectures at their real sizes with random weights, nothing downloaded;
# throughput and % of peak only (results/shape/). On this CPU: ViLBERT ~15 min; VideoBERT ~6 min;
# ActBERT (2 captions against 1000 videos) ~8 min and ~17 GB of memory; ClipBERT ~7.5 min; LLaVA 7B
# (bf16, 1 question) ~17 min with its 14 GB checkpoint (disk) and ~16 GB of memory.
SHAPE_TABLES = $(shell $(PY) -m zoorepro tables --scale shape)
shape: env
	$(SNAKEMAKE) $(SHAPE_TABLES) $(patsubst results/shape/%.csv,results/shape/report/%,$(SHAPE_TABLES))
	$(PY) -m zoorepro audit

# Recount the FLOPs a sample of the claimed models (claims/flops.yaml) from their full-size graphs.
flops: env
	$(SNAKEMAKE) work/src/vilbert/SOURCES.json
	$(PY) -m zoorepro.vilbert.count_flops --src work/src/vilbert --onnx work/shape/vilbert/count/vqa-vilbert.onnx \
		--record claims/flops.yaml
	$(SNAKEMAKE) work/shape/videobert/onnx/video-bert.onnx
	$(PY) -m zoorepro.videobert.count_flops --onnx work/shape/videobert/onnx/video-bert.onnx --record claims/flops.yaml
	$(SNAKEMAKE) work/src/actbert/SOURCES.json
	$(PY) -m zoorepro.actbert.count_flops --src work/src/actbert --out work/shape/actbert/count/flops.json \
		--record claims/flops.yaml
	$(PY) -m zoorepro.clipbert.compute --record claims/flops.yaml
	$(PY) -m zoorepro.llava_video.count_flops --record claims/flops.yaml

bench: env
	$(PY) scripts/bench.py

lint: env
	$(SNAKEMAKE) --lint

# `dvc repro` through the venv (stages call snakemake, which must be on PATH).
repro: env
	$(VENV)/bin/dvc repro

dvc.yaml: env
	$(PY) -m zoorepro dvc-yaml

lock:
	$(PY) -m pip freeze --exclude-editable | grep -v -i -E '^(allennlp|allennlp-models|ppvideo|zoorepro|uv)==' \
		| sed '1i # Frozen from envs/requirements.in by `make lock` (Python 3.11, linux x86_64). Install: make env' \
		> envs/requirements.lock

clean-mini:
	rm -rf data/mini work/mini results/mini logs/mini
