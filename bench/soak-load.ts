// The soak's load and receivers, a process of its own (driven by bench/scenarios/soak.ts over IPC):
//   receivers  `origins` HTTP servers on 127.0.0.1 (one origin each) that answer 500 to `fail500`
//              of requests and never answer `hang` of them (the sender's timeout ends those), else 200
//   run        creates `rate` jobs/s for `seconds` on PulseGate, spread over the origins, each with
//              timeout_ms `timeoutMs` and the default retry policy
//   progress   created, first attempts seen, first 2xx seen so far (the backlog is created minus
//              first attempts seen: jobs not yet tried at all)
//   stats      latency creation → first 2xx, duplicates, counts
// Each payload carries i (index) and t (creation time, epoch ms).

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { serve } from './lib/rpc.js';
import { dist, nowMs, Samples, type Dist } from './lib/stats.js';

export interface SoakProgress {
  created: number;
  failed_creates: number;
  first_attempts: number;
  first_2xx: number;
  requests: number;
  answered_500: number;
  hung: number;
  at: number;
}

export interface SoakStats extends SoakProgress {
  latency_first_2xx_ms: Dist;
  /** 2xx answered more than once for one job (at-least-once: a redelivery after a lost result). */
  duplicate_2xx: number;
  send_lag_ms: Dist;
}

let seenAttempt: Uint8Array = new Uint8Array(1 << 20);
let seen2xx: Uint8Array = new Uint8Array(1 << 20);
const latency = new Samples(1 << 20);
const sendLag = new Samples(1 << 16);
const p: SoakProgress = { created: 0, failed_creates: 0, first_attempts: 0, first_2xx: 0, requests: 0, answered_500: 0, hung: 0, at: 0 };
let duplicate2xx = 0;
let fail500 = 0.1;
let hang = 0.01;
const servers: Server[] = [];
const urls: string[] = [];

function grow(a: Uint8Array, i: number): Uint8Array {
  if (i < a.length) return a;
  const next = new Uint8Array(Math.max(a.length * 2, i + 1));
  next.set(a);
  return next;
}

function handle(body: string, res: import('node:http').ServerResponse): void {
  p.requests++;
  let i = -1;
  let t = 0;
  try {
    const j = JSON.parse(body) as { i?: number; t?: number };
    i = typeof j.i === 'number' ? j.i : -1;
    t = typeof j.t === 'number' ? j.t : 0;
  } catch {
    // counted as a request only
  }
  if (i >= 0) {
    seenAttempt = grow(seenAttempt, i);
    if (!seenAttempt[i]) {
      seenAttempt[i] = 1;
      p.first_attempts++;
    }
  }
  const r = Math.random();
  if (r < hang) {
    p.hung++;
    return; // never answered: the sender times out and closes the connection
  }
  if (r < hang + fail500) {
    p.answered_500++;
    res.writeHead(500, { 'content-length': '4' });
    res.end('fail');
    return;
  }
  res.writeHead(200, { 'content-length': '2' });
  res.end('ok');
  if (i >= 0) {
    seen2xx = grow(seen2xx, i);
    if (seen2xx[i]) duplicate2xx++;
    else {
      seen2xx[i] = 1;
      p.first_2xx++;
      latency.push(nowMs() - t);
    }
  }
}

async function receivers(a: { origins: number; fail500: number; hang: number }): Promise<{ urls: string[] }> {
  fail500 = a.fail500;
  hang = a.hang;
  for (let k = 0; k < a.origins; k++) {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => handle(Buffer.concat(chunks).toString('utf8'), res));
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    urls.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`);
  }
  return { urls };
}

interface RunArgs {
  pgUrl: string;
  rate: number;
  seconds: number;
  connections: number;
  timeoutMs: number;
}

async function run(a: RunArgs): Promise<SoakProgress> {
  const pool = new Pool(a.pgUrl, { connections: a.connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const n = Math.round(a.rate * a.seconds);
  const interval = 1000 / a.rate;
  const inflight = new Set<Promise<void>>();
  const startedAt = nowMs() + 20;
  const create = async (i: number) => {
    const body = JSON.stringify({
      tenant_id: `tenant-${i % 4}`,
      type: 'soak',
      payload: { i, t: nowMs(), order: { id: `ord_${i}`, amount_cents: 1299 } },
      destination: { url: urls[Math.floor(i / 4) % urls.length], timeout_ms: a.timeoutMs },
    });
    try {
      const res = await pool.request({ path: '/v1/jobs', method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await res.body.dump();
      if (res.statusCode === 201) p.created++;
      else p.failed_creates++;
    } catch {
      p.failed_creates++;
    }
  };
  let i = 0;
  // bounded: every pass sends at least one job or sleeps until the next is due
  while (i < n) {
    const now = nowMs();
    while (i < n && startedAt + i * interval <= now) {
      sendLag.push(now - (startedAt + i * interval));
      const pr = create(i).finally(() => inflight.delete(pr));
      inflight.add(pr);
      i++;
    }
    if (i < n) await new Promise((r) => setTimeout(r, Math.max(0, startedAt + i * interval - nowMs())));
  }
  await Promise.all(inflight);
  await pool.close();
  return progress();
}

function progress(): SoakProgress {
  return { ...p, at: nowMs() };
}

serve({
  receivers,
  run,
  progress,
  stats: (): SoakStats => ({ ...progress(), latency_first_2xx_ms: dist(latency), duplicate_2xx: duplicate2xx, send_lag_ms: dist(sendLag) }),
  close: async () => {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  },
});
