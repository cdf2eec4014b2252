#!/usr/bin/env bash
# Installs what `make bench` drives, only when missing: the `wrk` load generator (from
# Debian's packages) and py-spy (into the project's .venv, never into pyproject).
set -euo pipefail

cd "$(dirname "$0")/.."
VENV_PY="${VENV_PY:-.venv/bin/python}"

if ! command -v wrk >/dev/null 2>&1; then
  echo "installing system package: wrk"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends wrk
fi

if [ -x "$VENV_PY" ] && [ ! -x "$(dirname "$VENV_PY")/py-spy" ]; then
  echo "installing py-spy into $(dirname "$(dirname "$VENV_PY")")"
  # Optional: the benchmarks run without it and skip the profile.
  "$VENV_PY" -m pip install -q py-spy || echo "py-spy could not be installed; profiling is skipped"
fi
exit 0
