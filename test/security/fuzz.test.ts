// Fuzzing POST /v1/jobs: a few thousand mutations of a valid body, from a seeded PRNG (a failure
// names its seed and case, and FUZZ_SEED reproduces a run). Each answer must be a 201/200 when the
// body is valid (decided independently, with the zod schema and the guard's URL check) and a 4xx
// with a JSON error otherwise; the store holds exactly the jobs answered 201; the service stays healthy.
//
// Loopback only: every name resolves to 127.0.0.1 (an injected resolver) and a mutation that would
// produce a literal non-loopback IP is replaced before sending, so an accepted job can only ever be
// delivered to this machine.
import assert from 'node:assert/strict';
import type { LookupFunction } from 'node:net';
import { after, before, describe, it } from 'node:test';
import ipaddr from 'ipaddr.js';
import { ERROR_CODES } from '../../src/api/errors.js';
import { generateKey } from '../../src/auth/keys.js';
import { createJobBodySchema } from '../../src/api/schemas.js';
import { createDestinationGuard } from '../../src/delivery/ssrf.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { startTestService, type TestService } from '../support/service.js';
import { expectHealthy, flood, jobCount } from './helpers.js';

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);
const CASES = Number(process.env.FUZZ_CASES ?? 3000);
const CONCURRENCY = 16;
const MAX_PAYLOAD_BYTES = 8192;
const MAX_DEPTH = 64;
const ENV = { ALLOW_PRIVATE_DESTINATIONS: 'false', ALLOWED_DESTINATION_CIDRS: '127.0.0.0/8', MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD_BYTES) };

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const toLoopback: LookupFunction = (_hostname, options, callback) => {
  if (options.all) return callback(null, [{ address: '127.0.0.1', family: 4 }]);
  callback(null, '127.0.0.1', 4);
};

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

class Mutator {
  constructor(
    private readonly rand: () => number,
    private readonly port: number,
  ) {}

  int(n: number): number {
    return Math.floor(this.rand() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }

  base(i: number): Record<string, Json> {
    return {
      tenant_id: 'fuzz',
      type: 'fuzz.event',
      payload: { i, items: [1, 'two', { three: 3 }], ok: true },
      destination: { url: `http://fuzz.test:${this.port}/hook`, method: 'POST', timeout_ms: 2000, headers: { 'x-case': String(i) } },
      retry: { max_attempts: 2, base_delay_ms: 10, max_delay_ms: 100 },
      delay_ms: 86_400_000,
    };
  }

  string(): string {
    return this.pick([
      '',
      ' ',
      'x'.repeat(this.int(300)),
      'y'.repeat(2000 + this.int(20_000)),
      '☃ ünïcødé 𝄞 😀',
      '\u202e\u200b\u200d\ufeff',
      '\ud800',
      '\udfff\ud800',
      'a\u0000b',
      'line\r\nInjected: yes',
      '../../etc/passwd',
      '%00%2e%2e',
      "' OR 1=1 --",
      '<script>alert(1)</script>',
      '{"nested":"json"}',
      'fuzz',
      '2026-01-01T00:00:00Z',
      '9'.repeat(400),
      // digit runs just short of the old overflow pattern's 300: it rescanned each from every digit
      `${'1'.repeat(299)} `.repeat(20 + this.int(200)),
    ]);
  }

  garbage(depth = 0): Json {
    const kind = this.int(depth > 90 ? 6 : 9);
    switch (kind) {
      case 0:
        return null;
      case 1:
        return this.rand() < 0.5;
      case 2:
        return this.pick([0, -0, -1, 1.5, 2 ** 53 + 1, -(2 ** 53) - 1, 1e308, -1e308, 5e-324, 65536, 2 ** 31, 86_400_000 * 366]);
      case 3:
      case 4:
      case 5:
        return this.string();
      case 6:
        return Array.from({ length: this.int(4) }, () => this.garbage(depth + 1));
      case 7: {
        const o: Record<string, Json> = {};
        for (let k = this.int(4); k > 0; k--) o[this.pick(['a', 'tenant_id', 'url', 'constructor', 'prototype', '__proto__x', this.string().slice(0, 40)])] = this.garbage(depth + 1);
        return o;
      }
      default: {
        // a deep chain, sometimes deeper than the parser allows
        let v: Json = this.garbage(91);
        for (let d = 1 + this.int(80); d > 0; d--) v = this.rand() < 0.5 ? [v] : { d: v };
        return v;
      }
    }
  }

  url(): string {
    return this.pick([
      `http://fuzz.test:${this.port}/other`,
      `https://fuzz.test:${this.port}/tls`,
      `http://127.0.0.1:${this.port}/hook`,
      `http://localhost:${this.port}/hook`,
      'http://[::1]/',
      'http://169.254.169.254/latest/meta-data/',
      'http://0x7f.0.0.1/',
      'http://2130706433/',
      'http://[::ffff:169.254.169.254]/',
      'http://10.0.0.1/',
      'ftp://fuzz.test/',
      'file:///etc/passwd',
      'javascript:alert(1)',
      'gopher://fuzz.test:70/_x',
      'http://',
      '//fuzz.test/',
      'http://user:pw@fuzz.test/',
      `http://fuzz.test:${this.port}/${'p'.repeat(3000)}`,
      'http://☃.fuzz.test/',
      'http://[::1',
      'http://fuzz.test:99999/',
      `http://fuzz.test:${this.port}/a b`,
      'http://fuzz.test/%00',
    ]);
  }

  /** Every path to a value inside v (objects and arrays), the root excluded. */
  paths(v: Json, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
    const entries: [string | number, Json][] = Array.isArray(v) ? v.map((x, i) => [i, x]) : v && typeof v === 'object' ? Object.entries(v) : [];
    for (const [k, x] of entries) {
      out.push([...prefix, k]);
      this.paths(x, [...prefix, k], out);
    }
    return out;
  }

  mutate(body: Record<string, Json>): void {
    const all = this.paths(body);
    const path = this.pick(all);
    const parent = path.slice(0, -1).reduce<Json>((o, k) => (o as Record<string | number, Json>)[k] as Json, body) as Record<string | number, Json>;
    const key = path[path.length - 1] as string | number;
    const op = this.int(10);
    switch (op) {
      case 0:
        if (Array.isArray(parent)) parent.splice(Number(key), 1);
        else delete parent[key];
        return;
      case 1:
      case 2:
        parent[key] = this.garbage();
        return;
      case 3: {
        const v = parent[key];
        if (typeof v === 'string' && v.length > 0) {
          const at = this.int(v.length);
          parent[key] = v.slice(0, at) + String.fromCharCode(this.int(0x3000)) + v.slice(at + 1);
        } else parent[key] = this.string();
        return;
      }
      case 4:
        body[this.pick(['extra', 'tenant', 'id', 'status', 'attempts', 'Tenant_id', 'payload ', this.string().slice(0, 20)])] = this.garbage();
        return;
      case 5:
        (body.destination as Record<string, Json>) = typeof body.destination === 'object' && body.destination && !Array.isArray(body.destination) ? body.destination : {};
        (body.destination as Record<string, Json>).url = this.url();
        return;
      case 6: {
        const headers: Record<string, Json> = {};
        const n = this.pick([1, 3, 51, 60]);
        for (let h = 0; h < n; h++) headers[this.pick([`x-h${h}`, 'Host', 'content-length', 'webhook-signature', 'bad header', 'X-Dup', 'x-dup', `x-h${h}`])] = this.pick(['v', 'a\r\nb', 'x'.repeat(9000), 7, null, '☃']);
        if (typeof body.destination === 'object' && body.destination && !Array.isArray(body.destination)) body.destination.headers = headers;
        return;
      }
      case 7:
        body[this.pick(['run_at', 'delay_ms', 'dedupe_key', 'rate_limit', 'retry'])] = this.pick<Json>([
          '2026-13-01T00:00:00Z',
          new Date(Date.now() + 86_400_000).toISOString(),
          '2026-01-01T00:00:00+25:00',
          -5,
          0,
          null,
          { rps: 0 },
          { rps: 5, burst: 10 },
          { max_attempts: 51 },
          { base_delay_ms: 100, max_delay_ms: 10 },
          this.string(),
        ]);
        return;
      case 8: {
        // an extreme number in a numeric field
        const extreme = this.pick([1e-300, 5e-324, -5e-324, 1e308, -1e308, 2 ** 53 + 2, 0.001, 0.0009, 10_000.5, 1e21, -0, 0.5]);
        const dest = typeof body.destination === 'object' && body.destination && !Array.isArray(body.destination) ? body.destination : null;
        switch (this.int(7)) {
          case 0: body.rate_limit = { rps: extreme }; break;
          case 1: body.rate_limit = { rps: 1, burst: extreme }; break;
          case 2: body.retry = { max_attempts: extreme }; break;
          case 3: body.retry = { base_delay_ms: extreme }; break;
          case 4: body.retry = { base_delay_ms: 0, max_delay_ms: extreme }; break;
          case 5: body.delay_ms = extreme; break;
          default: if (dest) dest.timeout_ms = extreme;
        }
        return;
      }
      default:
        body.payload = this.pick<Json>([null, this.garbage(), this.string(), 'z'.repeat(MAX_PAYLOAD_BYTES), [], {}, 0]);
    }
  }
}

function depth(v: unknown): number {
  if (Array.isArray(v)) return 1 + Math.max(0, ...v.map(depth));
  if (v && typeof v === 'object') return 1 + Math.max(0, ...Object.values(v).map(depth));
  return 0;
}

/** A literal IP that is not loopback: the fuzzer must never make the service connect to one. */
function namesForeignAddress(url: unknown): boolean {
  if (typeof url !== 'string') return false;
  let host: string;
  try {
    host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return false;
  }
  if (!ipaddr.isValid(host)) return false;
  let addr = ipaddr.parse(host);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  return addr.range() !== 'loopback';
}

describe('fuzzing POST /v1/jobs', () => {
  let svc: TestService;
  let rx: Receiver;
  const guard = createDestinationGuard({ allowPrivate: false, allowedCidrs: ['127.0.0.0/8'] });

  function expectedValid(sent: unknown): boolean {
    if (depth(sent) > MAX_DEPTH) return false;
    const parsed = createJobBodySchema.safeParse(sent);
    if (!parsed.success) return false;
    if (Buffer.byteLength(JSON.stringify(parsed.data.payload)) > MAX_PAYLOAD_BYTES) return false;
    return guard.checkUrl(parsed.data.destination.url).ok;
  }

  before(async () => {
    rx = await startReceiver();
    svc = await startTestService(ENV, { lookup: toLoopback });
  });
  after(async () => {
    await svc.cleanup();
    await rx.close();
  });

  it(`answers ${CASES} mutated bodies (seed ${SEED}) with 201/200 exactly when valid, else a JSON 4xx, and stays healthy`, async (t) => {
    const started = Date.now();
    const m = new Mutator(prng(SEED), rx.port);
    const bodies: string[] = [];
    for (let i = 0; i < CASES; i++) {
      const body = m.base(i);
      for (let k = 1 + m.int(4); k > 0; k--) m.mutate(body);
      const dest = body.destination;
      if (dest && typeof dest === 'object' && !Array.isArray(dest) && namesForeignAddress(dest.url)) dest.url = `http://fuzz.test:${rx.port}/hook`;
      bodies.push(JSON.stringify(body));
    }

    const tally = new Map<string, number>();
    let created = 0;
    let next = 0;
    const failures: string[] = [];
    async function worker(): Promise<void> {
      while (next < bodies.length) {
        const i = next++;
        const text = bodies[i]!;
        const valid = expectedValid(JSON.parse(text));
        const res = await svc.request('/v1/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: text });
        const answer = await res.text();
        tally.set(String(res.status), (tally.get(String(res.status)) ?? 0) + 1);
        if (res.status === 201) created++;
        const where = `case ${i} (seed ${SEED}): ${res.status} ${answer.slice(0, 300)}\n  body: ${text.slice(0, 400)}`;
        if (valid) {
          if (res.status !== 201 && res.status !== 200) failures.push(`valid body refused: ${where}`);
          continue;
        }
        if (res.status < 400 || res.status >= 500) {
          failures.push(`invalid body answered: ${where}`);
          continue;
        }
        let code: unknown;
        try {
          code = (JSON.parse(answer) as { error: { code: unknown; message: unknown } }).error.code;
        } catch {
          code = undefined;
        }
        if (!(ERROR_CODES as readonly unknown[]).includes(code)) failures.push(`not a JSON error: ${where}`);
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));

    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} failures`);
    assert.equal(await jobCount(svc), created, 'the store holds exactly the jobs answered 201');
    const invalid = [...tally].filter(([s]) => s.startsWith('4')).reduce((a, [, n]) => a + n, 0);
    assert.ok(invalid > CASES / 2, `mostly invalid bodies (${JSON.stringify(Object.fromEntries(tally))})`);
    assert.ok(created > 0, 'some mutations stay valid');
    await expectHealthy(svc);
    assert.equal((await svc.get('/readyz')).status, 200);
    const ms = Date.now() - started;
    t.diagnostic(`answers by status ${JSON.stringify(Object.fromEntries(tally))} in ${ms} ms; ${rx.requests.length} deliveries`);
  });
});

describe('fuzzing request framing against early answers', () => {
  const key = generateKey().key;
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ API_KEYS: `*:${key}`, MAX_PAYLOAD_BYTES: '4096', REQUEST_TIMEOUT_MS: '60000' });
  });
  after(() => svc.cleanup());

  it('answers every combination of route, key and declared length, and never reads an unbounded body it refused', async () => {
    const rand = prng(SEED + 1);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
    const bodyLimit = 4096 + 512 * 1024;
    const failures: string[] = [];
    for (let i = 0; i < 40; i++) {
      const method = pick(['POST', 'GET', 'PUT', 'DELETE']);
      const path = pick(['/v1/jobs', '/healthz', '/metrics', '/v1/dlq', '/v1/jobs/x/cancel', '/nowhere']);
      const auth = pick(['', `Authorization: Bearer ${key}\r\n`, 'Authorization: Bearer pg_wrong\r\n']);
      const length = pick<number | 'chunked'>(['chunked', 0, 10, 70_000, bodyLimit + 1, 10 * 1024 ** 2, 50 * 1024 ** 3]);
      const framing = length === 'chunked' ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${length}\r\n`;
      const head = `${method} ${path} HTTP/1.1\r\nHost: pulsegate\r\nContent-Type: application/json\r\n${auth}${framing}\r\n`;
      const r = await flood(svc.url, head, length === 'chunked', 3000);
      const where = `case ${i}: ${method} ${path} ${auth ? auth.slice(0, 22) : 'no key'} ${length} → ${r.status} closed=${r.closedByServer} after ${r.sentBytes} bytes`;
      if (r.status === null) failures.push(`no answer: ${where}`);
      else if (typeof length === 'number' && length > bodyLimit && r.status !== 413) failures.push(`not 413: ${where}`);
      // a body too large to drain, or of unknown length, must not keep its connection
      if ((length === 'chunked' || length > 64 * 1024) && !r.closedByServer) failures.push(`kept reading: ${where}`);
    }
    assert.deepEqual(failures, []);
    await expectHealthy(svc);
  });
});
