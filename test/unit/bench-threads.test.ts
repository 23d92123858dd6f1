// The benchmark's CPU split per thread (bench/lib/sys.ts), read from /proc for a real process: a
// child whose main thread idles while one worker thread spins must show the worker as its busiest
// other thread and the main thread far below it, and the other way round. (The bounds leave room for
// a loaded machine: a thread that spins for 600 ms of wall time gets what share of a core it can.)
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { threadCpuMs, threadSplit, type ThreadSplit } from '../../bench/lib/sys.js';

/** A node process that spins for `ms` in its main thread or in one worker thread, then waits to be killed. */
async function spinner(where: 'main' | 'worker', ms: number): Promise<ChildProcess> {
  const spin = `const until = Date.now() + ${ms}; while (Date.now() < until) {}`;
  const code =
    where === 'main'
      ? `${spin}; console.log('done'); setInterval(() => {}, 1000);`
      : `const { Worker } = require('node:worker_threads');
         const w = new Worker(${JSON.stringify(`${spin}; require('node:worker_threads').parentPort.postMessage('done'); setInterval(() => {}, 1000);`)}, { eval: true });
         w.on('message', () => console.log('done'));
         setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(child, 'spawn');
  return child;
}

/** Spins in `where` for 600 ms and returns the split of that span. */
async function splitWhileSpinning(where: 'main' | 'worker'): Promise<ThreadSplit> {
  const child = await spinner(where, 600);
  try {
    const split = threadSplit(child.pid!);
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    assert.equal(line.toString().trim(), 'done');
    const s = split();
    assert.ok(s, 'the process is there');
    assert.ok((threadCpuMs(child.pid!)?.size ?? 0) > 1, 'node runs helper threads beside the main one');
    return s;
  } finally {
    child.kill();
  }
}

describe('bench: CPU per thread from /proc', () => {
  it('finds the worker thread that spins as the busiest other thread, the idle main thread far below', { skip: process.platform !== 'linux' }, async () => {
    const s = await splitWhileSpinning('worker');
    assert.ok(s.busiest >= 15, `busiest other thread ${s.busiest}% of one core while it spun`);
    assert.ok(s.main < s.busiest / 2, `main thread ${s.main}% against the worker's ${s.busiest}%`);
  });

  it('counts a main thread that spins as the main thread, not as another', { skip: process.platform !== 'linux' }, async () => {
    const s = await splitWhileSpinning('main');
    assert.ok(s.main >= 15, `main thread ${s.main}% of one core while it spun`);
    assert.ok(s.busiest < s.main / 2, `busiest other thread ${s.busiest}% against the main thread's ${s.main}%`);
  });

  it('answers null for a process that is gone', async () => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await once(child, 'exit');
    assert.equal(threadCpuMs(child.pid!), null);
  });
});
