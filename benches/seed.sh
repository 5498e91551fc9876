#!/usr/bin/env bash
# Benchmark of the main job: the seed plan (fixtures/go-hello/build.cue) with
# the local backend, side by side with the same `go build` run directly.
#   benches/seed.sh [ROUNDS]
# Prints, per round: cold `do build` (empty store), warm no-op `do build`,
# a rebuild after one .go file changed, and the direct `go build` (the host's
# Debian Go, which is the stand-in image's toolchain, with an empty build
# cache). Needs `scripts/services up` (registry + stand-in images) and root.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
rounds="${1:-3}"
cd "$root"
scripts/services up >/dev/null
# shellcheck disable=SC1091
source .ci/state/env
cargo build --release -q -p cuedag-cli
bin="$root/target/release/cuedag"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

printf '%-6s %10s %10s %12s %14s\n' round cold_s warm_s one_file_s direct_go_s
for round in $(seq 1 "$rounds"); do
  rm -rf "$work/proj" "$work/store" "$work/gocache"
  cp -r fixtures/go-hello "$work/proj"
  rm -rf "$work/proj/output"
  export CUEDAG_STORE="$work/store"
  cd "$work/proj"

  t0=$(now); "$bin" do build --log-format plain >/dev/null 2>&1; t1=$(now)
  cold=$(elapsed "$t0" "$t1")
  t0=$(now); "$bin" do build --log-format plain >/dev/null 2>&1; t1=$(now)
  warm=$(elapsed "$t0" "$t1")
  printf '\n// changed in round %s\n' "$round" >> greet/greet.go
  t0=$(now); "$bin" do build --log-format plain >/dev/null 2>&1; t1=$(now)
  onefile=$(elapsed "$t0" "$t1")
  test -x output/hello

  t0=$(now)
  GOCACHE="$work/gocache" GOFLAGS=-mod=mod CGO_ENABLED=0 go build -v -o "$work/direct/" . >/dev/null 2>&1
  t1=$(now)
  direct=$(elapsed "$t0" "$t1")
  cd "$root"
  printf '%-6s %10s %10s %12s %14s\n' "$round" "$cold" "$warm" "$onefile" "$direct"
done
