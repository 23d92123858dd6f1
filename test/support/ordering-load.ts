// The ordering-keys load of issue 16, shared by the one-process (SQLite) and two-instance
// (PostgreSQL) tests: KEYS keys × PER_KEY jobs, each key's jobs created in order (the next only after
// the 201 of the one before, spread over the given instances), a receiver that fails 20% of
// requests at random, and jobs without a key created meanwhile. It records what the receiver saw;
// the checks say what must hold.
import assert from 'node:assert/strict';
import { startReceiver, type Receiver } from './receiver.js';
import { eventually, jobBody } from './service.js';

export const KEYS = 50;
export const PER_KEY = 40;
export const UNKEYED = 200;
/** Small backoff and attempts enough that a 20% failure rate never exhausts them (0.2^50). */
const RETRY = { max_attempts: 50, base_delay_ms: 10, max_delay_ms: 50 };

interface Delivery {
  key: string | null;
  n: number;
  ok: boolean;
  at: number;
}

export interface OrderingLoad {
  rx: Receiver;
  deliveries: Delivery[];
  /** Most requests of one key the receiver had open at once. */
  maxOpenPerKey: number;
  /** Creates the load through the instances and waits until every job succeeded once (bounded). */
  run(urls: string[], timeoutMs: number): Promise<void>;
  /** The rules, on what the receiver saw. */
  check(): void;
  close(): Promise<void>;
}

export async function orderingLoad(): Promise<OrderingLoad> {
  const deliveries: Delivery[] = [];
  const open = new Map<string, number>();
  let maxOpenPerKey = 0;
  const rx = await startReceiver(async (req, res) => {
    const body = JSON.parse(req.body) as { key: string | null; n: number };
    const key = body.key;
    if (key !== null) {
      open.set(key, (open.get(key) ?? 0) + 1);
      maxOpenPerKey = Math.max(maxOpenPerKey, open.get(key) ?? 0);
    }
    // a little time in the receiver, so two attempts of one key would overlap if both were sent
    await new Promise((r) => setTimeout(r, 2));
    const ok = Math.random() >= 0.2;
    deliveries.push({ key, n: body.n, ok, at: performance.now() });
    if (key !== null) open.set(key, (open.get(key) ?? 1) - 1);
    res.writeHead(ok ? 200 : 503).end(ok ? 'ok' : 'try again');
  });

  const post = async (url: string, jobs: unknown[]) => {
    const res = await fetch(`${url}/v1/jobs/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jobs }),
    });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const { data } = JSON.parse(text) as { data: { status: number }[] };
    assert.ok(data.every((d) => d.status === 201), `every job created: ${text.slice(0, 300)}`);
  };

  const firstSuccesses = (key: string | null) => {
    const seen = new Set<number>();
    const out: number[] = [];
    for (const d of deliveries) {
      if (d.key !== key || !d.ok || seen.has(d.n)) continue;
      seen.add(d.n);
      out.push(d.n);
    }
    return out;
  };

  return {
    rx,
    deliveries,
    get maxOpenPerKey() {
      return maxOpenPerKey;
    },
    async run(urls, timeoutMs) {
      const hook = `${rx.url}/hook`;
      const keyed = (n: number) =>
        Array.from({ length: KEYS }, (_, k) =>
          jobBody(hook, { ordering_key: `key-${k}`, payload: { key: `key-${k}`, n }, retry: RETRY }),
        );
      const unkeyed = Array.from({ length: UNKEYED }, (_, n) => jobBody(hook, { payload: { key: null, n }, retry: RETRY }));
      // the first half of each key's jobs, then the jobs without a key, then the rest: the keyed
      // backlog is under way when the others arrive
      for (let n = 0; n < PER_KEY / 2; n++) await post(urls[n % urls.length] as string, keyed(n));
      await post(urls[0] as string, unkeyed);
      for (let n = PER_KEY / 2; n < PER_KEY; n++) await post(urls[n % urls.length] as string, keyed(n));
      await eventually(async () => {
        const done = new Set(deliveries.filter((d) => d.ok).map((d) => `${d.key}:${d.n}`));
        return done.size === KEYS * PER_KEY + UNKEYED;
      }, timeoutMs, 100);
    },
    check() {
      const inOrder = Array.from({ length: PER_KEY }, (_, n) => n);
      for (let k = 0; k < KEYS; k++) assert.deepEqual(firstSuccesses(`key-${k}`), inOrder, `key-${k}: first successes in creation order`);
      assert.equal(maxOpenPerKey, 1, 'one request of a key at a time');
      assert.equal(firstSuccesses(null).length, UNKEYED);
      // Jobs without a key do not wait for the keyed backlog: each one's first attempt comes before
      // that backlog's last success. (Not its success: a job the receiver fails a few times in a row
      // waits out its backoff and a claim, and may land after a backlog that finished early.)
      const keyedDone = Math.max(...deliveries.filter((d) => d.ok && d.key !== null).map((d) => d.at));
      const firstTry = new Map<number, number>();
      for (const d of deliveries) if (d.key === null && !firstTry.has(d.n)) firstTry.set(d.n, d.at);
      assert.equal(firstTry.size, UNKEYED);
      const lastFirstTry = Math.max(...firstTry.values());
      assert.ok(lastFirstTry < keyedDone, `every job without a key was tried before the keyed backlog finished (${(keyedDone - lastFirstTry).toFixed(0)} ms before)`);
      const failures = deliveries.filter((d) => !d.ok).length;
      assert.ok(failures > 0, 'the receiver failed some requests');
    },
    close: () => rx.close(),
  };
}
