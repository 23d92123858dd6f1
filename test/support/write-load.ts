// Writes without pause, as the WAL tests need: 20 jobs an hour ahead per commit, a turn of the
// event loop between commits (so a checkpointer's reports and timers get in, as in a server).
import type { Store } from '../../src/store/store.js';
import { newJob } from '../store/store-contract.js';

/** Creates jobs for `ms`, calling `after` after each commit; resolves with how many it created. */
export async function writeWithoutPause(store: Pick<Store, 'createJobs'>, ms: number, after: () => void = () => undefined): Promise<number> {
  let written = 0;
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const now = Date.now();
    await store.createJobs(Array.from({ length: 20 }, (_, i) => newJob(now, { run_at: now + 3_600_000, payload_json: JSON.stringify({ n: written + i }) })), now);
    written += 20;
    await new Promise((r) => setImmediate(r));
    after();
  }
  return written;
}
