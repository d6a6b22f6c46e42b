#!/usr/bin/env bash
# Set up petzarr in .venv and run the demo: a synthetic cohort converted on a local cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/python.sh ""
exec "$VENV/bin/petzarr" demo "$@"
