#!/usr/bin/env bash
# `make demo`: the example tenants on the embedded default, then their lifecycle the GitOps
# way. The demo edits its own copy of tenant-configs/ (out/demo-configs, the "Git checkout"),
# so the shipped examples stay as they are and a second run finds nothing left to do.
set -euo pipefail
cd "$(dirname "$0")/.."
tenantctl=.venv/bin/tenantctl
work=out/demo-configs
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "validate the example tenants, then plan and apply a copy of them"
"$tenantctl" validate -f tenant-configs/
[ -d "$work" ] || { mkdir -p out && cp -r tenant-configs "$work"; }
"$tenantctl" plan -f "$work"
"$tenantctl" apply -f "$work" --yes   # corner-cafe imports its sample data (2,008 rows)
"$tenantctl" verify tenant-100

say "upgrade corner-cafe to enterprise with its data: change its tier, apply"
sed -i 's/^  tier: standard$/  tier: enterprise/' "$work/corner-cafe.yaml"
"$tenantctl" apply -f "$work" --yes

say "delete bluebird: remove its file, apply with --prune (a verified export comes first)"
rm -f "$work/bluebird-books.yaml"
"$tenantctl" apply -f "$work" --prune --yes

say "the fleet"
"$tenantctl" get
