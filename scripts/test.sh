#!/usr/bin/env bash
# Set up .venv (with test tools) and run the whole test suite offline.
# --fast: only the unit and in-process tests (pytest -m "not slow"); see docs/development.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# setup.sh again only when what it installs from has changed since the last run (pip's own check takes a minute)
stamp=.venv/.setup-stamp
inputs=$(cat scripts/setup.sh constraints.txt requirements-dev.txt pyproject.toml plugins/*/pyproject.toml | sha256sum)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$inputs" ]; then
  bash scripts/setup.sh --dev
  echo "$inputs" > "$stamp"
fi
# What the tests need from Debian: espeak-ng (speech), libsndfile (audio files), chromium (the web
# page). Installed here when missing and we can (root with apt-get).
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
ldconfig -p 2>/dev/null | grep -q libsndfile || missing+=(libsndfile1)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || true
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export HF_HUB_OFFLINE=1
args=()
for arg in "$@"; do
  if [ "$arg" = --fast ]; then args+=(-m "not slow"); else args+=("$arg"); fi
done
exec .venv/bin/python -m pytest -q "${args[@]}"
