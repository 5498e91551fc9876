#!/usr/bin/env bash
# Benchmark of the main job: the seed plan (fixtures/go-hello/build.cue) with
# the local backend, side by side with the same `go build` run directly.
#   benches/seed.sh [ROUNDS]
# Prints, per round:
#   cold_s      `do build` with an empty store (pull, apk steps, go build,
#               export, client write);
#   cold_exec_s the `go build` step inside that cold run (its task duration);
#   warm_s      a no-op rerun (every step cached);
#   one_file_s  a rebuild after one .go file changed;
#   direct_s    the same `go build` (same argv, env, user, workdir, image
#               layers and source layer, empty cache mounts) run directly in
#               the same bubblewrap sandbox, with no CUE, plan or step cache
#               around it: the exec recorded by the cold run
#               (CUEDAG_DEBUG_EXEC_SPECS) replayed by
#               backends/examples/replay_exec.rs, timed as a whole process;
#   host_go_s   extra information: the host's Debian Go (the stand-in
#               image's toolchain) run outside any sandbox, empty build cache.
# Needs root and the registry with the stand-in images: started here with
# `scripts/services up` unless CUEDAG_REGISTRY_MIRRORS is already set (as
# after `source .ci/state/env`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
rounds="${1:-3}"
cd "$root"
# Start the services unless the environment already points at them.
if [ -z "${CUEDAG_REGISTRY_MIRRORS:-}" ]; then
  scripts/services up >/dev/null
  # shellcheck disable=SC1091
  source .ci/state/env
fi
cargo build --release -q -p cuedag-cli
cargo build --release -q -p cuedag-backends --example replay_exec
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/release/cuedag"
replay="$target/release/examples/replay_exec"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

printf '%-6s %8s %12s %8s %11s %9s %10s\n' \
  round cold_s cold_exec_s warm_s one_file_s direct_s host_go_s
for round in $(seq 1 "$rounds"); do
  rm -rf "$work/proj" "$work/store" "$work/gocache" "$work/direct-cache" "$work/specs.jsonl"
  cp -r fixtures/go-hello "$work/proj"
  rm -rf "$work/proj/output"
  export CUEDAG_STORE="$work/store"
  cd "$work/proj"

  t0=$(now)
  CUEDAG_DEBUG_EXEC_SPECS="$work/specs.jsonl" "$bin" do build --log-format json \
    >/dev/null 2>"$work/cold.log"
  t1=$(now)
  cold=$(elapsed "$t0" "$t1")
  cold_exec=$(grep '"task":"actions.build.container._exec"' "$work/cold.log" \
    | grep '"state":"completed"' \
    | sed 's/.*"duration":\([0-9.]*\).*/\1/' \
    | awk '{ printf "%.3f", $1 / 1000 }')
  t0=$(now); "$bin" do build --log-format plain >/dev/null 2>&1; t1=$(now)
  warm=$(elapsed "$t0" "$t1")
  printf '\n// changed in round %s\n' "$round" >> greet/greet.go
  t0=$(now); "$bin" do build --log-format plain >/dev/null 2>&1; t1=$(now)
  onefile=$(elapsed "$t0" "$t1")
  test -x output/hello

  t0=$(now)
  "$replay" "$work/specs.jsonl" build "$work/direct-cache" >/dev/null 2>&1
  t1=$(now)
  direct=$(elapsed "$t0" "$t1")

  t0=$(now)
  GOCACHE="$work/gocache" GOFLAGS=-mod=mod CGO_ENABLED=0 go build -v -o "$work/direct/" . >/dev/null 2>&1
  t1=$(now)
  host_go=$(elapsed "$t0" "$t1")
  cd "$root"
  printf '%-6s %8s %12s %8s %11s %9s %10s\n' \
    "$round" "$cold" "$cold_exec" "$warm" "$onefile" "$direct" "$host_go"
done
