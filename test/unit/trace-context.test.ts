// W3C Trace Context parsing: what is kept, what is ignored as the spec says.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatTraceparent,
  incomingTrace,
  MAX_TRACESTATE_CHARS,
  newSpanId,
  newTraceId,
  parseTraceparent,
  parseTracestate,
  traceIdOf,
} from '../../src/domain/trace-context.js';
import { propagationOnly, tracesUrl } from '../../src/observability/tracing.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';
const TP = `00-${TRACE}-${PARENT}-01`;

describe('traceparent', () => {
  it('parses a valid version-00 header into its trace id, parent id and flags', () => {
    assert.deepEqual(parseTraceparent(TP), { trace_id: TRACE, span_id: PARENT, flags: 1 });
    assert.deepEqual(parseTraceparent(`00-${TRACE}-${PARENT}-00`)?.flags, 0);
    assert.equal(formatTraceparent({ trace_id: TRACE, span_id: PARENT, flags: 1 }), TP);
  });

  it('ignores malformed headers: wrong length, uppercase, all-zero ids, version ff, bad separators', () => {
    for (const bad of [
      '',
      'garbage',
      `00-${TRACE}-${PARENT}-1`,
      `00-${TRACE}-${PARENT}-01-extra`,
      `00-${TRACE.toUpperCase()}-${PARENT}-01`,
      `00-${'0'.repeat(32)}-${PARENT}-01`,
      `00-${TRACE}-${'0'.repeat(16)}-01`,
      `ff-${TRACE}-${PARENT}-01`,
      `00_${TRACE}-${PARENT}-01`,
      `0g-${TRACE}-${PARENT}-01`,
      `00-${TRACE}-${PARENT}-zz`,
    ]) {
      assert.equal(parseTraceparent(bad), null, bad);
    }
    assert.equal(parseTraceparent(undefined), null);
  });

  it('accepts a later version with more fields after a dash, as the spec asks for forward compatibility', () => {
    assert.equal(parseTraceparent(`01-${TRACE}-${PARENT}-01-whatever`)?.trace_id, TRACE);
    assert.equal(parseTraceparent(`01-${TRACE}-${PARENT}-01x`), null);
  });

  it('treats two traceparent headers as invalid and keeps the tracestate only with a valid traceparent', () => {
    assert.equal(incomingTrace([TP, TP], 'a=1'), null);
    assert.equal(incomingTrace('nope', 'a=1'), null);
    assert.deepEqual(incomingTrace(TP, 'a=1'), { parent: { trace_id: TRACE, span_id: PARENT, flags: 1 }, tracestate: 'a=1' });
    assert.deepEqual(incomingTrace(TP, 'not valid'), { parent: { trace_id: TRACE, span_id: PARENT, flags: 1 }, tracestate: null });
  });

  it('makes random span and trace ids of the right shape', () => {
    const ids = new Set(Array.from({ length: 100 }, newSpanId));
    assert.equal(ids.size, 100);
    for (const id of ids) assert.match(id, /^[0-9a-f]{16}$/);
    assert.match(newTraceId(), /^[0-9a-f]{32}$/);
    assert.equal(traceIdOf(TP), TRACE);
    assert.equal(traceIdOf(null), undefined);
  });
});

describe('tracestate', () => {
  it('keeps valid members, trimmed, and joins several headers', () => {
    assert.equal(parseTracestate('congo=t61rcWkgMzE, rojo=00f067aa0ba902b7'), 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
    assert.equal(parseTracestate(['a=1', 'b=2']), 'a=1,b=2');
    assert.equal(parseTracestate('tenant@vendor=x,,  ,b=2'), 'tenant@vendor=x,b=2');
  });

  it('drops the whole header when a member is invalid or a key repeats', () => {
    for (const bad of ['novalue', '=x', 'Upper=1', 'a=1,a=2', 'a=has,comma', 'a=tab\there', `a=${'x'.repeat(257)}`]) {
      assert.equal(parseTracestate(bad), null, bad);
    }
    assert.equal(parseTracestate(Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',')), null);
    assert.equal(parseTracestate(''), null);
    assert.equal(parseTracestate(undefined), null);
  });

  it(`drops members from the end until it fits in ${MAX_TRACESTATE_CHARS} characters`, () => {
    const members = Array.from({ length: 10 }, (_, i) => `k${i}=${'v'.repeat(100)}`);
    const kept = parseTracestate(members.join(','));
    assert.ok(kept !== null && kept.length <= MAX_TRACESTATE_CHARS);
    assert.equal(kept, members.slice(0, 4).join(','));
  });
});

describe('propagation without export', () => {
  it('gives a traced create a new span id in the client\'s trace, and each attempt another one', () => {
    const t = propagationOnly();
    assert.equal(t.exporting, false);
    assert.equal(t.startCreate(null, 0), null, 'no traceparent, nothing exported: no trace');
    const create = t.startCreate({ parent: { trace_id: TRACE, span_id: PARENT, flags: 1 }, tracestate: 'a=1' }, 0);
    assert.ok(create);
    const c = parseTraceparent(create.traceparent);
    assert.equal(c?.trace_id, TRACE);
    assert.notEqual(c?.span_id, PARENT);
    assert.equal(c?.flags, 1);
    assert.equal(create.tracestate, 'a=1');
    const job = { id: 'j', tenant_id: 't', destination: { url: 'http://x', method: 'POST' as const, timeout_ms: 1, headers: {} }, tracestate: 'a=1' };
    const a1 = t.startAttempt(job, create.traceparent, 1, 0);
    const a2 = t.startAttempt(job, create.traceparent, 2, 0);
    assert.equal(parseTraceparent(a1.traceparent)?.trace_id, TRACE);
    assert.notEqual(parseTraceparent(a1.traceparent)?.span_id, parseTraceparent(a2.traceparent)?.span_id);
    assert.equal(a1.tracestate, 'a=1');
  });

  it('exports to OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces, or the traces endpoint as given, unless the SDK is disabled', () => {
    assert.equal(tracesUrl({ OTEL_SDK_DISABLED: false }), null);
    assert.equal(tracesUrl({ OTEL_SDK_DISABLED: false, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' }), 'http://c:4318/v1/traces');
    assert.equal(
      tracesUrl({ OTEL_SDK_DISABLED: false, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://d/x' }),
      'http://d/x',
    );
    assert.equal(tracesUrl({ OTEL_SDK_DISABLED: true, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }), null);
  });
});

describe('the SDK stays out of a service without an endpoint', () => {
  it('is imported by otel.ts only, which only tracing.ts loads, dynamically', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const root = join(import.meta.dirname, '../../src');
    const files = (readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'));
    const sdk = files.filter((f) => /from '@opentelemetry\//.test(readFileSync(join(root, f), 'utf8')));
    assert.deepEqual(sdk, [join('observability', 'otel.ts')]);
    const loaders = files.filter((f) => /otel\.js'/.test(readFileSync(join(root, f), 'utf8')));
    assert.deepEqual(loaders, [join('observability', 'tracing.ts')]);
    assert.match(readFileSync(join(root, 'observability', 'tracing.ts'), 'utf8'), /await import\('\.\/otel\.js'\)/);
  });
});
