#!/usr/bin/env bash
# Set up .venv (with test tools) and run the whole test suite offline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
export HF_HUB_OFFLINE=1
exec .venv/bin/python -m pytest -q "$@"
