#!/usr/bin/env bash
# Instructions executed by the plan model on the seed plan
# (fixtures/go-hello/build.cue with its universe imports), counted by
# valgrind's callgrind. Unlike the wall-clock figures of
# `cargo bench --bench plan`, the count does not depend on what else the
# machine runs, so before/after comparisons of a change hold on a busy
# machine. Needs valgrind. Prints:
#   - one `Plan::load` (load, evaluate, discover tasks, dependency graph);
#   - one warm run's plan side (`plan_seed_run_fills`: load, validate, then
#     inputs and fill-back of each task of `do build` with made-up outputs).
#   evaluator/benches/plan_instructions.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
bench="$(cargo bench -q -p cuedag-evaluator --bench plan --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "plan":
        print(m["executable"])')"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
# Instructions inside FUNCTION while running benchmark BENCH once, divided
# by COUNT (without `--bench`, divan runs each benchmark once; the benchmark
# also runs its work once before measuring: two runs in all).
count() {
  valgrind --tool=callgrind --callgrind-out-file="$out" \
    --toggle-collect="$2" "$bench" "$1" >/dev/null 2>&1
  total="$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')"
  echo $((total / 2))
}
echo "instructions per seed Plan::load: $(count plan_seed_load_and_graph 'cuedag_evaluator::plan::engine::Plan::load')"
echo "instructions per seed warm-run plan side: $(count plan_seed_run_fills 'plan::run_seed_plan')"
