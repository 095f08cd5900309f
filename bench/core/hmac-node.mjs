// Node's createHmac baseline of the signing benchmark: HMAC-SHA256 of the same 20-byte user id
// under the same 40-byte secret as bench/core/identity_bench.cpp, a new Hmac object per signature
// (Node has no reusable keyed HMAC). Prints one JSON line: the median ns/op of several batches.
// Usage: node hmac-node.mjs [--min-time SECONDS] [--batches N]
import { createHmac } from 'node:crypto';

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const minTime = arg('--min-time', 0.5);
const batches = Math.max(1, arg('--batches', 5));
const secret = 'whsec_confab_benchmark_secret_0123456789';
const userId = 'user_8f3a2c91d04e7b65';

let sink = 0;
function batch(n) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) sink ^= createHmac('sha256', secret).update(userId).digest()[0];
  return Number(process.hrtime.bigint() - t0) / n;
}
// Grow the batch until it lasts min-time / batches (also warms up the JIT).
let n = 1000;
for (;;) {
  const ns = batch(n);
  if ((ns * n) / 1e9 >= minTime / batches || n >= 1e8) break;
  n *= 4;
}
const results = [];
for (let b = 0; b < batches; b++) results.push(batch(n));
results.sort((a, b) => a - b);
const hex = createHmac('sha256', secret).update(userId).digest('hex');
console.log(JSON.stringify({
  name: 'node_createHmac', nsPerOp: results[Math.floor(results.length / 2)], minNsPerOp: results[0],
  iterations: n, batches, node: process.version, check: hex, sink,
}));
