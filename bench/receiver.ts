// The webhook receiver: a minimal node:http server on 127.0.0.1 that answers 200, counts, and notes
// when each delivery lands. Each job's payload carries `t` (epoch ms when the load generator created
// it), `i` (its index) and, for a scheduled job, `d` (when it was due), so creation-to-delivery
// latency and scheduling lateness are both measured where the delivery arrives.
// Driven by bench/run.ts over IPC: url, reset, stats, waitFor.

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from './lib/rpc.js';
import { dist, nowMs, Samples, type Dist } from './lib/stats.js';

export interface ReceiverStats {
  count: number;
  /** Epoch ms of the first and last delivery since the last reset. */
  first_at: number;
  last_at: number;
  /** Deliveries per second from the first to the last. */
  rate: number;
  /** Delivery time minus creation time, jobs without `d`. */
  latency_ms: Dist;
  /** Delivery time minus due time, jobs with `d`. */
  lateness_ms: Dist;
  duplicates: number;
  unparsed: number;
}

let count = 0;
let firstAt = 0;
let lastAt = 0;
let duplicates = 0;
let unparsed = 0;
const latency = new Samples(1 << 16);
const lateness = new Samples(1 << 16);
let seen = new Uint8Array(1 << 16);
let waiter: { n: number; resolve: () => void } | null = null;

function note(body: string, at: number): void {
  count++;
  if (count === 1) firstAt = at;
  lastAt = at;
  let p: { t?: unknown; d?: unknown; i?: unknown };
  try {
    p = JSON.parse(body) as typeof p;
  } catch {
    unparsed++;
    return;
  }
  if (typeof p.i === 'number' && p.i >= 0) {
    if (p.i >= seen.length) {
      const next = new Uint8Array(Math.max(seen.length * 2, p.i + 1));
      next.set(seen);
      seen = next;
    }
    if (seen[p.i]) duplicates++;
    seen[p.i] = 1;
  }
  if (typeof p.d === 'number') lateness.push(at - p.d);
  else if (typeof p.t === 'number') latency.push(at - p.t);
  else unparsed++;
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const at = nowMs();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
    note(Buffer.concat(chunks).toString('utf8'), at);
    if (waiter && count >= waiter.n) {
      const w = waiter;
      waiter = null;
      w.resolve();
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1');
await new Promise<void>((resolve) => server.once('listening', resolve));
const { port } = server.address() as AddressInfo;

function stats(): ReceiverStats {
  const span = (lastAt - firstAt) / 1000;
  return {
    count,
    first_at: firstAt,
    last_at: lastAt,
    rate: count > 1 && span > 0 ? (count - 1) / span : NaN,
    latency_ms: dist(latency),
    lateness_ms: dist(lateness),
    duplicates,
    unparsed,
  };
}

serve({
  url: () => ({ url: `http://127.0.0.1:${port}/hook` }),
  reset: () => {
    count = firstAt = lastAt = duplicates = unparsed = 0;
    latency.clear();
    lateness.clear();
    seen.fill(0);
  },
  stats,
  /** Resolves when n deliveries have arrived since the last reset, or after timeoutMs. */
  waitFor: async ({ n, timeoutMs }: { n: number; timeoutMs: number }) => {
    if (count < n) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          waiter = null;
          resolve();
        }, timeoutMs);
        waiter = {
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        };
      });
    }
    return { count, reached: count >= n };
  },
});
