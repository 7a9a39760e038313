#!/usr/bin/env bash
# Set up .venv and run a real pretrained model offline from the hub CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
echo "== hub list"
.venv/bin/hub list
echo; echo "== hub run all-minilm-l6-v2 \"a cat\" \"a kitten\" \"a car\""
.venv/bin/hub run all-minilm-l6-v2 "a cat" "a kitten" "a car"
