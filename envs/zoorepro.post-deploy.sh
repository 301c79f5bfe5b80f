#!/usr/bin/env bash
# Snakemake runs this inside the freshly created conda env (see zoorepro.yaml).
set -euo pipefail
python -m pip install --no-deps -r "$(dirname "$0")/requirements-nodeps.txt"
