// Log lines of real deliveries: the fields an operator needs, and never a payload or a secret.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { Logger } from 'pino';
import { EventBus } from '../../src/observability/events.js';
import { attachEventLogger, createLogger } from '../../src/observability/logger.js';
import { startReceiver } from '../support/receiver.js';
import { eventually, jobBody, startTestService } from '../support/service.js';

interface Line {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A logger whose lines the test reads back (raw, and parsed). */
function capture(level: string): { logger: Logger; raw: string[]; lines: () => Line[] } {
  const raw: string[] = [];
  const logger = createLogger(level, { write: (s: string) => void raw.push(s) });
  return { logger, raw, lines: () => raw.map((s) => JSON.parse(s) as Line) };
}

const INFO = 30;
const WARN = 40;
const ERROR = 50;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('log lines of deliveries', () => {
  it('writes a line when an operator cancels or retries a job', async () => {
    const log = capture('info');
    const svc = await startTestService({}, { logger: log.logger });
    cleanups.push(() => svc.cleanup());
    const res = await svc.post('/v1/jobs', jobBody('http://127.0.0.1:9/never', { delay_ms: 60_000 }));
    const { id } = (await res.json()) as { id: string };
    assert.equal((await svc.post(`/v1/jobs/${id}/cancel`, {})).status, 200);
    assert.equal((await svc.post(`/v1/jobs/${id}/retry`, {})).status, 200);
    const changes = log.lines().filter((l) => l.msg === 'job status changed' && l.job_id === id);
    assert.deepEqual(changes.map((l) => [l.status, l.reason, l.level]), [['cancelled', 'cancel', INFO], ['queued', 'retry', INFO]]);
  });

  it('writes one line per attempt with job_id, tenant_id, attempt, outcome, status_code and duration_ms, and no payload or secret', async () => {
    let calls = 0;
    const rx = await startReceiver((_req, res) => {
      res.writeHead(++calls === 1 ? 503 : 200);
      res.end();
    });
    cleanups.push(() => rx.close());
    const log = capture('info');
    const svc = await startTestService({}, { logger: log.logger });
    cleanups.push(() => svc.cleanup());

    const res = await svc.post(
      '/v1/jobs',
      jobBody(`${rx.url}/hook`, {
        tenant_id: 'acme',
        payload: { card: 'PAYLOAD-CANARY-4111', nested: { note: 'PAYLOAD-CANARY-NESTED' } },
        destination: {
          url: `${rx.url}/hook`,
          method: 'POST',
          timeout_ms: 5000,
          headers: { Authorization: 'Bearer SECRET-CANARY-TOKEN', 'X-Api-Key': 'SECRET-CANARY-KEY' },
        },
        retry: { max_attempts: 3, base_delay_ms: 0, max_delay_ms: 0 },
      }),
      { authorization: 'Bearer SECRET-CANARY-CALLER' },
    );
    assert.equal(res.status, 201);
    const { id } = (await res.json()) as { id: string };

    const attempts = await eventually(async () => {
      const mine = log.lines().filter((l) => l.job_id === id && l.event === 'attempt.finished');
      return mine.length === 2 ? mine : null;
    });
    const [first, second] = attempts as [Line, Line];
    assert.equal(first.level, INFO);
    assert.equal(first.msg, 'attempt finished');
    assert.equal(first.tenant_id, 'acme');
    assert.equal(first.attempt, 1);
    assert.equal(first.outcome, 'retryable_error');
    assert.equal(first.error_kind, 'http');
    assert.equal(first.status_code, 503);
    assert.equal(first.status, 'retrying');
    assert.equal(typeof first.next_attempt_at, 'string');
    assert.equal(typeof first.duration_ms, 'number');

    assert.equal(second.attempt, 2);
    assert.equal(second.outcome, 'success');
    assert.equal(second.error_kind, null);
    assert.equal(second.status_code, 200);
    assert.equal(second.status, 'success');
    assert.ok(Number.isInteger(second.duration_ms) && (second.duration_ms as number) >= 0);
    assert.equal(second.service, 'pulsegate');
    assert.equal(typeof second.time, 'string');

    // the receiver got the payload and the headers: the log has neither
    assert.ok(rx.requests.some((r) => r.body.includes('PAYLOAD-CANARY-4111') && r.headers.authorization === 'Bearer SECRET-CANARY-TOKEN'));
    const all = log.raw.join('');
    for (const secret of ['PAYLOAD-CANARY', 'SECRET-CANARY', rx.url]) assert.ok(!all.includes(secret), `a log line contains ${secret}`);
    // job.created is a debug line: at info, the attempts are the only lines about this job
    assert.equal(log.lines().filter((l) => l.job_id === id).length, 2);
  });

  it('logs a job that lands in the dead-letter queue at warn', async () => {
    const rx = await startReceiver((_req, res) => {
      res.writeHead(400);
      res.end();
    });
    cleanups.push(() => rx.close());
    const log = capture('info');
    const svc = await startTestService({}, { logger: log.logger });
    cleanups.push(() => svc.cleanup());
    const res = await svc.post('/v1/jobs', jobBody(`${rx.url}/hook`, { payload: { secret: 'PAYLOAD-CANARY-DLQ' } }));
    const { id } = (await res.json()) as { id: string };

    const line = await eventually(async () => log.lines().find((l) => l.job_id === id && l.event === 'attempt.finished'));
    assert.equal(line.level, WARN);
    assert.equal(line.outcome, 'permanent_error');
    assert.equal(line.status_code, 400);
    assert.equal(line.status, 'failed');
    assert.ok(!log.raw.join('').includes('PAYLOAD-CANARY'));
  });

  it('logs the creation of each job at debug, with the rest of its life', async () => {
    const rx = await startReceiver();
    cleanups.push(() => rx.close());
    const log = capture('debug');
    const svc = await startTestService({}, { logger: log.logger });
    cleanups.push(() => svc.cleanup());
    const res = await svc.post('/v1/jobs', jobBody(`${rx.url}/hook`, { payload: { secret: 'PAYLOAD-CANARY-DEBUG' } }));
    const { id } = (await res.json()) as { id: string };

    const events = await eventually(async () => {
      const mine = log.lines().filter((l) => l.job_id === id).map((l) => l.event);
      return mine.includes('attempt.finished') ? mine : null;
    });
    assert.deepEqual(events, ['job.created', 'attempt.started', 'attempt.finished']);
    assert.ok(!log.raw.join('').includes('PAYLOAD-CANARY'));
  });
});

describe('createLogger', () => {
  it('honours the level it is given', () => {
    for (const [level, expected] of [['info', ['i', 'w', 'e']], ['warn', ['w', 'e']], ['silent', []], ['debug', ['d', 'i', 'w', 'e']]] as const) {
      const log = capture(level);
      log.logger.debug('d');
      log.logger.info('i');
      log.logger.warn('w');
      log.logger.error('e');
      assert.deepEqual(log.lines().map((l) => l.msg), expected, level);
    }
  });

  it('redacts payloads and credentials wherever a job or a request is logged whole', () => {
    const log = capture('info');
    log.logger.info(
      {
        job: { id: 'j1', payload_json: '{"card":"CANARY"}', destination: { url: 'https://x', headers: { authorization: 'CANARY' } } },
        req: { method: 'POST', headers: { authorization: 'Bearer CANARY', 'x-api-key': 'CANARY', 'idempotency-key': 'CANARY' }, body: 'CANARY' },
        payload: { a: 'CANARY' },
        headers: { authorization: 'CANARY', cookie: 'CANARY' },
        attempt: { response_body: 'CANARY' },
        secret: 'CANARY',
      },
      'whole objects',
    );
    const [line] = log.lines() as [Line];
    assert.ok(!JSON.stringify(line).includes('CANARY'), JSON.stringify(line));
    assert.equal((line.job as { id: string }).id, 'j1', 'the rest of the object stays');
    assert.equal((line.req as { method: string }).method, 'POST');
  });
});

describe('attachEventLogger', () => {
  it('logs store errors at error and recovered leases at warn, and stops when detached', () => {
    const log = capture('info');
    const events = new EventBus();
    const detach = attachEventLogger(events, log.logger);
    events.emit({ type: 'store.error', op: 'engine.write', error: 'SQLITE_FULL: database or disk is full' });
    events.emit({ type: 'leases.recovered', count: 3 });
    events.emit({ type: 'store.write', op: 'create', count: 10, duration_ms: 1.5 });
    events.emit({ type: 'ratelimit.wait', tenant_id: 't', wait_ms: 100, released: false });
    detach();
    events.emit({ type: 'store.error', op: 'claim', error: 'late' });

    const lines = log.lines();
    assert.deepEqual(lines.map((l) => [l.level, l.event]), [
      [ERROR, 'store.error'],
      [WARN, 'leases.recovered'],
    ]);
    assert.equal(lines[0]?.op, 'engine.write');
    assert.equal(lines[0]?.error, 'SQLITE_FULL: database or disk is full');
    assert.equal(lines[1]?.count, 3);
  });
});
