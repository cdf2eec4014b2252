#!/usr/bin/env bash
# Installs the system tools the test suite drives for real (from Debian's packages),
# only those that are missing. Needs root (or sudo) when something is missing.
set -euo pipefail

declare -A pkg_for=(
  [openssl]=openssl
  [curl]=curl
  [jq]=jq
  [promtool]=prometheus
  [systemd-analyze]=systemd
  [sqlite3]=sqlite3
  [chromium]=chromium
  [nginx]=nginx
  [redis-server]=redis-server
)

missing=()
for cmd in "${!pkg_for[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkg_for[$cmd]}")
done
# PostgreSQL's server binaries (initdb, postgres, pg_ctl) are not on PATH in Debian:
# they live in /usr/lib/postgresql/<version>/bin/.
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing system packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
