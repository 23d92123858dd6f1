// withSemiSpace: a worker's young generation sized on its own. V8 sizes every isolate's young
// generation from the process's --max-semi-space-size (a Worker's resourceLimits cannot lower it);
// the engine thread is given a smaller one this way (see ENGINE_SEMI_SPACE_MB).
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { describe, it } from 'node:test';
import { withSemiSpace } from '../../src/spawn-worker.js';

// allocates 3 million small objects, a tenth of a million alive at a time (which grows a young
// generation left to V8's defaults), and reports the largest its young generation was
const SOURCE = `
const { parentPort } = require('node:worker_threads');
const { getHeapSpaceStatistics } = require('node:v8');
const young = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
let keep = [];
let most = 0;
for (let i = 0; i < 3e6; i++) {
  keep.push({ i });
  if (keep.length > 1e5) keep = [];
  if (i % 1000 === 0) most = Math.max(most, young());
}
parentPort.postMessage(most);
`;

function youngOf(spawn: () => Worker): Promise<number> {
  const w = spawn();
  return new Promise((resolve, reject) => {
    w.once('message', (n: number) => void w.terminate().then(() => resolve(n)));
    w.once('error', reject);
  });
}

describe('withSemiSpace', () => {
  it("holds a worker's young generation to two semi-spaces of the size given, and leaves the next worker as before", async () => {
    const MiB = 2 ** 20;
    const small = await youngOf(() => withSemiSpace(1, () => new Worker(SOURCE, { eval: true })));
    const plain = await youngOf(() => new Worker(SOURCE, { eval: true }));
    // two semi-spaces of 1 MiB; Node 24's V8 sometimes counts one more 256 KiB page (2.25 MiB seen
    // about once in 8 runs under load), so the bound leaves it room: a worker on the defaults reached 32 MiB here
    assert.ok(small <= 3 * MiB, `young generation ${small / MiB} MiB with semi-spaces of 1 MiB`);
    assert.ok(plain > 8 * MiB, `a worker made after it grows as the process's flags allow: ${plain / MiB} MiB (the test can tell)`);
  });
});
