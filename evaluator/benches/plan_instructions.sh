#!/usr/bin/env bash
# Instructions executed by one `Plan::load` of the seed plan
# (fixtures/go-hello/build.cue with its universe imports: load, evaluate,
# discover tasks, dependency graph), counted by valgrind's callgrind. Unlike
# the wall-clock figures of `cargo bench --bench plan`, the count does not
# depend on what else the machine runs, so before/after comparisons of a
# change hold on a busy machine. Needs valgrind.
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
# Without `--bench`, divan runs each benchmark once; the benchmark also loads
# the plan once before measuring: two loads in all.
valgrind --tool=callgrind --callgrind-out-file="$out" \
  --toggle-collect='cuedag_evaluator::plan::engine::Plan::load' \
  "$bench" plan_seed_load_and_graph >/dev/null 2>&1
total="$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')"
echo "instructions per seed Plan::load: $((total / 2))"
