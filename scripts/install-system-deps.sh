#!/usr/bin/env bash
# Debian packages the project needs beyond the base image; a no-op when present.
set -euo pipefail
need=()
command -v psql >/dev/null || need+=(postgresql-client)
command -v wrk >/dev/null || need+=(wrk)  # the load generator of bench/resolve.py
command -v terraform >/dev/null || { echo "terraform is not installed (expected 1.11.x on PATH)" >&2; }
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "missing Debian packages: ${need[*]} (run as root, or install them)" >&2; exit 1
  fi
fi
