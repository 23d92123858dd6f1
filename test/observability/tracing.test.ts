// Trace propagation over real HTTP: the receiver's traceparent, and the spans an in-process OTLP/HTTP
// receiver (a plain node:http server on loopback taking POST /v1/traces, JSON) gets.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, it } from 'node:test';
import type { Logger } from 'pino';
import { parseTraceparent } from '../../src/domain/trace-context.js';
import { createLogger } from '../../src/observability/logger.js';
import { startReceiver } from '../support/receiver.js';
import { eventually, jobBody, startTestService } from '../support/service.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';
const TP = `00-${TRACE}-${PARENT}-01`;
const TS = 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7';
const FAST_RETRY = { max_attempts: 3, base_delay_ms: 50, max_delay_ms: 50 };

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes?: { key: string; value: Record<string, unknown> }[];
  status?: { code?: number };
}

interface Collector {
  url: string;
  spans: OtlpSpan[];
  services: Set<string>;
  contentTypes: Set<string>;
  close(): Promise<void>;
}

/** An OTLP/HTTP receiver: accepts POST /v1/traces in JSON and keeps every span. */
async function startCollector(): Promise<Collector> {
  const spans: OtlpSpan[] = [];
  const services = new Set<string>();
  const contentTypes = new Set<string>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      contentTypes.add(String(req.headers['content-type']));
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      const doc = JSON.parse(body.toString('utf8')) as {
        resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
      };
      for (const rs of doc.resourceSpans) {
        const name = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue;
        if (name) services.add(name);
        for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    services,
    contentTypes,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

function attr(s: OtlpSpan, key: string): unknown {
  const v = s.attributes?.find((a) => a.key === key)?.value;
  if (!v) return undefined;
  if ('intValue' in v) return Number(v.intValue);
  return v.stringValue ?? v.doubleValue ?? v.boolValue;
}

const ms = (nanos: string): number => Number(BigInt(nanos) / 1_000_000n);
const msExact = (nanos: string): number => Number(BigInt(nanos)) / 1e6;

function capture(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const raw: string[] = [];
  const logger = createLogger('debug', { write: (s: string) => void raw.push(s) });
  return { logger, lines: () => raw.map((s) => JSON.parse(s) as Record<string, unknown>) };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('trace propagation without an OTLP endpoint', () => {
  it('continues the client\'s trace on every attempt: same trace id, a new parent id per attempt, the tracestate kept', async () => {
    let calls = 0;
    const rx = await startReceiver((_req, res) => {
      res.writeHead(++calls === 1 ? 503 : 200).end();
    });
    cleanups.push(() => rx.close());
    const log = capture();
    const svc = await startTestService({}, { logger: log.logger });
    cleanups.push(() => svc.cleanup());

    const res = await svc.post('/v1/jobs', jobBody(`${rx.url}/hook`, { retry: FAST_RETRY }), { traceparent: TP, tracestate: TS });
    assert.equal(res.status, 201);
    const job = (await res.json()) as { id: string; trace_id: string | null };
    assert.equal(job.trace_id, TRACE);
    const [first, second] = await rx.waitFor(2);
    const a1 = parseTraceparent(first!.headers.traceparent as string);
    const a2 = parseTraceparent(second!.headers.traceparent as string);
    assert.ok(a1 && a2, 'both attempts carry a valid traceparent');
    assert.equal(a1.trace_id, TRACE);
    assert.equal(a2.trace_id, TRACE);
    assert.equal(a1.flags, 1);
    assert.notEqual(a1.span_id, PARENT, "the parent is PulseGate's attempt span, not the client's span");
    assert.notEqual(a1.span_id, a2.span_id, 'each attempt is a span of its own');
    assert.equal(first!.headers.tracestate, TS);
    assert.equal(second!.headers.tracestate, TS);

    const got = (await (await svc.get(`/v1/jobs/${job.id}`)).json()) as { trace_id: string | null };
    assert.equal(got.trace_id, TRACE);
    await eventually(async () => log.lines().some((l) => l.msg === 'attempt finished' && l.job_id === job.id && l.status === 'success'));
    const about = log.lines().filter((l) => l.job_id === job.id);
    assert.ok(about.length >= 4, `lines about the job: ${about.length}`);
    for (const l of about) assert.equal(l.trace_id, TRACE, `${String(l.msg)} carries trace_id`);
  });

  it('starts no trace for a job created without a traceparent, and ignores a malformed one (201, no trace)', async () => {
    const rx = await startReceiver();
    cleanups.push(() => rx.close());
    const svc = await startTestService();
    cleanups.push(() => svc.cleanup());

    const plain = await svc.post('/v1/jobs', jobBody(`${rx.url}/plain`));
    assert.equal(plain.status, 201);
    assert.equal(((await plain.json()) as { trace_id: unknown }).trace_id, null);
    const bad = await svc.post('/v1/jobs', jobBody(`${rx.url}/bad`), { traceparent: `00-${TRACE.toUpperCase()}-${PARENT}-01`, tracestate: TS });
    assert.equal(bad.status, 201);
    assert.equal(((await bad.json()) as { trace_id: unknown }).trace_id, null);
    const received = await rx.waitFor(2);
    for (const r of received) {
      assert.equal(r.headers.traceparent, undefined, r.url);
      assert.equal(r.headers.tracestate, undefined, r.url);
    }
  });

  it('replaces a traceparent the job set among its own headers with its trace\'s, and sends the job\'s own when it has no trace', async () => {
    const rx = await startReceiver();
    cleanups.push(() => rx.close());
    const svc = await startTestService();
    cleanups.push(() => svc.cleanup());
    const own = `00-${'a'.repeat(32)}-${'b'.repeat(16)}-00`;
    const body = (path: string) => jobBody(`${rx.url}${path}`, { destination: { url: `${rx.url}${path}`, method: 'POST', timeout_ms: 5000, headers: { traceparent: own } } });
    assert.equal((await svc.post('/v1/jobs', body('/traced'), { traceparent: TP })).status, 201);
    assert.equal((await svc.post('/v1/jobs', body('/untraced'))).status, 201);
    const received = await rx.waitFor(2);
    const traced = received.find((r) => r.url === '/traced')!;
    const untraced = received.find((r) => r.url === '/untraced')!;
    assert.equal(parseTraceparent(traced.headers.traceparent as string)?.trace_id, TRACE);
    assert.equal(untraced.headers.traceparent, own);
  });

  it('applies a batch request\'s traceparent to every item', async () => {
    const rx = await startReceiver();
    cleanups.push(() => rx.close());
    const svc = await startTestService();
    cleanups.push(() => svc.cleanup());
    const res = await svc.post('/v1/jobs/batch', { jobs: [jobBody(`${rx.url}/1`), jobBody(`${rx.url}/2`), jobBody(`${rx.url}/3`)] }, { traceparent: TP });
    assert.equal(res.status, 200);
    const { data } = (await res.json()) as { data: { status: number; job: { trace_id: string } }[] };
    assert.deepEqual(data.map((d) => [d.status, d.job.trace_id]), [[201, TRACE], [201, TRACE], [201, TRACE]]);
    const received = await rx.waitFor(3);
    const parents = new Set(received.map((r) => parseTraceparent(r.headers.traceparent as string)?.span_id));
    assert.equal(parents.size, 3, 'every job has its own create span, every attempt its own span');
    for (const r of received) assert.equal(parseTraceparent(r.headers.traceparent as string)?.trace_id, TRACE);
  });
});

describe('spans exported over OTLP/HTTP', () => {
  it('exports the create, each attempt and the retry wait, with the right parents, times and attributes', async () => {
    const collector = await startCollector();
    cleanups.push(() => collector.close());
    let calls = 0;
    const rx = await startReceiver((_req, res) => {
      res.writeHead(++calls === 1 ? 503 : 200).end();
    });
    cleanups.push(() => rx.close());
    const svc = await startTestService({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_SERVICE_NAME: 'pulsegate-test' });
    cleanups.push(() => svc.cleanup());

    const res = await svc.post('/v1/jobs', jobBody(`${rx.url}/hook`, { retry: FAST_RETRY }), { traceparent: TP, tracestate: TS });
    assert.equal(res.status, 201);
    const job = (await res.json()) as { id: string; trace_id: string };
    assert.equal(job.trace_id, TRACE);
    const delivered = await rx.waitFor(2);
    await eventually(async () => ((await (await svc.get(`/v1/jobs/${job.id}`)).json()) as { status: string }).status === 'success');
    await svc.stop(5000); // flushes the span batch

    assert.deepEqual([...collector.services], ['pulsegate-test']);
    assert.ok([...collector.contentTypes].every((t) => t.startsWith('application/json')), [...collector.contentTypes].join());
    const spans = collector.spans.filter((s) => attr(s, 'pulsegate.job.id') === job.id);
    const create = spans.filter((s) => s.name === 'job create');
    const attempts = spans.filter((s) => s.name === 'job attempt').sort((a, b) => Number(attr(a, 'pulsegate.attempt.number')) - Number(attr(b, 'pulsegate.attempt.number')));
    const waits = spans.filter((s) => s.name === 'job retry wait');
    assert.equal(create.length, 1, `spans: ${spans.map((s) => s.name).join(', ')}`);
    assert.equal(attempts.length, 2);
    assert.equal(waits.length, 1);
    const [c] = create;
    const [a1, a2] = attempts;
    const [w] = waits;
    assert.ok(c && a1 && a2 && w);

    // parents: client span → create → attempts and the wait
    for (const s of [c, a1, a2, w]) assert.equal(s.traceId, TRACE, s.name);
    assert.equal(c.parentSpanId, PARENT);
    assert.equal(a1.parentSpanId, c.spanId);
    assert.equal(a2.parentSpanId, c.spanId);
    assert.equal(w.parentSpanId, c.spanId);

    // the receiver's parent id is the attempt span's id
    assert.equal(parseTraceparent(delivered[0]!.headers.traceparent as string)?.span_id, a1.spanId);
    assert.equal(parseTraceparent(delivered[1]!.headers.traceparent as string)?.span_id, a2.spanId);

    // attributes
    assert.equal(attr(c, 'pulsegate.create.outcome'), 'created');
    assert.deepEqual(
      [a1, a2].map((a) => [attr(a, 'pulsegate.attempt.number'), attr(a, 'pulsegate.attempt.outcome'), attr(a, 'http.response.status_code'), attr(a, 'pulsegate.destination.origin')]),
      [[1, 'retryable_error', 503, rx.url], [2, 'success', 200, rx.url]],
    );
    assert.equal(a1.status?.code, 2, 'a failed attempt is an error span');
    assert.equal(attr(w, 'pulsegate.attempt.number'), 2);

    // times: the wait runs from attempt 1's end to attempt 2's start; the create comes first
    assert.ok(Math.abs(msExact(w.startTimeUnixNano) - msExact(a1.endTimeUnixNano)) <= 1, 'wait starts when attempt 1 ended');
    assert.equal(ms(w.endTimeUnixNano), ms(a2.startTimeUnixNano), 'wait ends when attempt 2 starts');
    assert.ok(ms(w.endTimeUnixNano) >= ms(w.startTimeUnixNano));
    assert.ok(ms(c.startTimeUnixNano) <= ms(a1.startTimeUnixNano));
    assert.ok(ms(a1.startTimeUnixNano) <= ms(a1.endTimeUnixNano));
  });

  it('starts a trace of its own for a job created without a traceparent, and the receiver sees it', async () => {
    const collector = await startCollector();
    cleanups.push(() => collector.close());
    const rx = await startReceiver();
    cleanups.push(() => rx.close());
    const svc = await startTestService({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.url });
    cleanups.push(() => svc.cleanup());

    const res = await svc.post('/v1/jobs', jobBody(`${rx.url}/hook`));
    const job = (await res.json()) as { id: string; trace_id: string | null };
    assert.match(job.trace_id ?? '', /^[0-9a-f]{32}$/);
    const [r] = await rx.waitFor(1);
    assert.equal(parseTraceparent(r!.headers.traceparent as string)?.trace_id, job.trace_id);
    await eventually(async () => ((await (await svc.get(`/v1/jobs/${job.id}`)).json()) as { status: string }).status === 'success');
    await svc.stop(5000);
    const spans = collector.spans.filter((s) => attr(s, 'pulsegate.job.id') === job.id);
    const c = spans.find((s) => s.name === 'job create');
    assert.ok(c);
    assert.equal(c.parentSpanId || undefined, undefined, 'the create span is the root');
    assert.equal(c.traceId, job.trace_id);
    assert.equal(spans.find((s) => s.name === 'job attempt')?.parentSpanId, c.spanId);
    assert.deepEqual([...collector.services], ['pulsegate']);
  });
});
