#!/usr/bin/env bash
# Registry cache benchmark: export of a realistic cache (3 layers x 4 MiB +
# 20 records with a 16 KiB layer each) to the local registry, unchanged
# re-export, import + lookup, fetch of one hit's layers.
#   benches/cache_registry.sh [ROUNDS]      (default 5)
# Needs the registry of `scripts/services up` (or CUEDAG_TEST_REGISTRY).
# PROFILE=dev uses the test build instead of the optimised one.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/services" up >/dev/null 2>&1 || true
profile="${PROFILE:-release}"
exec cargo run --quiet --profile "$profile" -p cuedag-backends --example cache_registry -- "${1:-5}"
