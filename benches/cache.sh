#!/usr/bin/env bash
# Persistent-cache benchmark on the seed plan (fixtures/go-hello/build.cue,
# action `build`), type=local and type=registry side by side, release build.
#   benches/cache.sh [ROUNDS]      (default 3; SYNTHETIC_ROUNDS=0 skips the
#                                   synthetic registry rounds at the end)
# Per round and cache type, with a fresh store and a fresh cache:
#   cold_s      `do build --cache-to mode=max` on an empty store (wall time)
#   export1_ms  its first mode=max export (prepare + write, from the log)
#   again_s     the same command again (nothing runs, unchanged export)
#   blobs/bytes written by that second export, and export2_ms its time
#   import_s    store wiped, `do build --cache-from` (wall time)
#   seed_s      store wiped, `do build --cache-to ... --cache-from ...`, the
#               seed's command line (wall time)
#   cpu_s       user + system CPU time of that run (wall time on a loaded
#               machine is mostly waiting for a core)
# Each import checks that ./output is byte-identical to the cold build's
# and that no layer blob of the Go image was fetched into the store.
# Then the synthetic registry-cache rounds of backends/examples/cache_registry.rs
# (export, unchanged re-export, import + lookup, one hit's fetch of a 24-blob
# cache). Goals (issue 7): import ≤ 0.2 s for both types, first mode=max
# export ≤ 1.7 s, second export 0 blobs in ≤ 50 ms.
# Needs root and `scripts/services up` (registry + stand-in images).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
rounds="${1:-3}"
cd "$root"
scripts/services up >/dev/null
# shellcheck disable=SC1091
source .ci/state/env
registry="${CUEDAG_TEST_REGISTRY:-127.0.0.1:5000}"
cargo build --release -q -p cuedag-cli
bin="${CARGO_TARGET_DIR:-$root/target}/release/cuedag"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# The value of `key=` in the last log line holding `what` (0 if absent).
field() {
  sed 's/\x1b\[[0-9;]*m//g' "$1" | grep "$2" | tail -1 |
    sed -n "s/.*[[:space:]]$3=\([0-9]*\).*/\1/p" | grep . || echo 0
}
run() {
  local log="$1"
  shift
  local t0 t1
  t0=$(now)
  CUEDAG_LOG=cuedag_backends::local::cache_io=info /usr/bin/time -f '%U %S' -o "$work/cpu" \
    "$bin" do build --log-format plain "$@" >"$log" 2>&1 ||
    { echo "cuedag failed, log:" >&2; cat "$log" >&2; exit 1; }
  t1=$(now)
  elapsed "$t0" "$t1"
}
image_blobs() {
  # Layer blobs of the stand-in Go image present in the store.
  local n=0 digest
  for digest in $go_layers; do
    [ -e "$CUEDAG_STORE/blobs/sha256/${digest#sha256:}" ] && n=$((n + 1))
  done
  echo "$n"
}

printf '%-6s %-9s %8s %11s %8s %6s %10s %11s %9s %8s %6s\n' \
  round type cold_s export1_ms again_s blobs bytes export2_ms import_s seed_s cpu_s
for round in $(seq 1 "$rounds"); do
  for type in local registry; do
    rm -rf "$work/proj" "$work/store" "$work/cache"
    cp -r fixtures/go-hello "$work/proj"
    rm -rf "$work/proj/output"
    export CUEDAG_STORE="$work/store"
    if [ "$type" = local ]; then
      to="type=local,mode=max,dest=$work/cache"
      from="type=local,src=$work/cache"
    else
      ref="$registry/cuedag-bench/cache-$$-$round:build"
      to="type=registry,mode=max,ref=$ref"
      from="type=registry,ref=$ref"
    fi
    cd "$work/proj"
    cold=$(run "$work/cold.log" --cache-to "$to")
    export1=$(($(field "$work/cold.log" "cache export prepared" elapsed_ms) + $(field "$work/cold.log" "cache exported" elapsed_ms)))
    cp output/hello "$work/hello.cold"
    go_layers=$(cat "$CUEDAG_STORE"/lazy/*.json 2>/dev/null | grep -o '"from":"image"[^}]*"digest":"sha256:[0-9a-f]*' | grep -o 'sha256:[0-9a-f]*' || true)
    [ -n "$go_layers" ] || { echo "no lazy image layer recorded by the cold build" >&2; exit 1; }

    before=$( [ "$type" = local ] && find "$work/cache/blobs" -type f | wc -l || echo 0)
    again=$(run "$work/again.log" --cache-to "$to")
    blobs=$(field "$work/again.log" "cache exported" blobs_written)
    bytes=$(field "$work/again.log" "cache exported" bytes_written)
    export2=$(($(field "$work/again.log" "cache export prepared" elapsed_ms) + $(field "$work/again.log" "cache exported" elapsed_ms)))
    if [ "$type" = local ]; then
      after=$(find "$work/cache/blobs" -type f | wc -l)
      [ "$after" -eq "$before" ] || echo "warning: the second export added $((after - before)) files" >&2
    fi

    rm -rf "$CUEDAG_STORE" output
    import=$(run "$work/import.log" --cache-from "$from")
    cmp -s output/hello "$work/hello.cold" || { echo "import: ./output differs" >&2; exit 1; }
    [ "$(image_blobs)" -eq 0 ] || echo "warning: the import fetched Go image layers" >&2

    rm -rf "$CUEDAG_STORE" output
    seed=$(run "$work/seed.log" --cache-to "$to" --cache-from "$from")
    cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$work/cpu")
    cmp -s output/hello "$work/hello.cold" || { echo "seed import: ./output differs" >&2; exit 1; }
    [ "$(image_blobs)" -eq 0 ] || echo "warning: the import fetched Go image layers" >&2
    cd "$root"
    printf '%-6s %-9s %8s %11s %8s %6s %10s %11s %9s %8s %6s\n' \
      "$round" "$type" "$cold" "$export1" "$again" "$blobs" "$bytes" "$export2" "$import" "$seed" "$cpu"
  done
done

if [ "${SYNTHETIC_ROUNDS:-3}" -gt 0 ]; then
  echo
  echo "synthetic registry cache (backends/examples/cache_registry.rs):"
  cargo run --quiet --release -p cuedag-backends --example cache_registry -- "${SYNTHETIC_ROUNDS:-3}"
fi
