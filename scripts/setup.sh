#!/usr/bin/env bash
# Create .venv and install the core hub, the three shipped plugins and (with --dev) the test tools.
# Exact versions come from constraints.txt; torch is the CPU-capable 2.14.1 build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt)
"${PIP[@]}" torch==2.14.1 torchvision==0.29.1
"${PIP[@]}" -e ".[train,test,serve,export]" -e "plugins/mmhub-transformers[minilm]" -e plugins/mmhub-timm -e plugins/mmhub-openclip -e plugins/mmhub-torchvision
if [ "${1:-}" = "--dev" ]; then
  "${PIP[@]}" -r requirements-dev.txt
fi
