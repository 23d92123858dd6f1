// What the security tests share: a log capture, raw sockets for requests fetch will not send, and
// counting what the store holds.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { createLogger } from '../../src/observability/logger.js';
import type { TestService } from '../support/service.js';

export interface LogCapture {
  logger: Logger;
  lines: string[];
  records(): Record<string, unknown>[];
}

export function captureLogs(level = 'info'): LogCapture {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  return { logger: createLogger(level, stream), lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** Jobs of every status in the store (through the API-independent Store interface). */
export async function jobCount(svc: TestService): Promise<number> {
  const counts = await svc.store.countByStatus();
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

export async function expectError(res: Response, status: number, code: string): Promise<{ code: string; message: string }> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const body = JSON.parse(text) as { error: { code: string; message: string } };
  assert.equal(body.error.code, code, text);
  return body.error;
}

export async function expectHealthy(svc: TestService): Promise<void> {
  const res = await svc.get('/healthz');
  assert.equal(res.status, 200);
  await res.arrayBuffer();
}

export interface RawAnswer {
  /** Everything the server wrote before closing or before the timeout. */
  text: string;
  status: number | null;
  /** The JSON body, if the answer had one. */
  json: unknown;
  /** Milliseconds from connect to close (or to the timeout). */
  ms: number;
  closed: boolean;
}

/**
 * Writes `chunks` to a fresh connection to the service (a delay between chunks when given) and reads
 * until the server closes, or until timeoutMs. Nothing is sent that the test did not write.
 */
export function rawRequest(url: string, chunks: (string | Buffer)[], opts: { timeoutMs?: number; gapMs?: number } = {}): Promise<RawAnswer> {
  const { port, hostname } = new URL(url);
  const timeoutMs = opts.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket: Socket = connect(Number(port), hostname);
    const received: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(received).toString('utf8');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1];
      const bodyAt = text.indexOf('\r\n\r\n');
      let json: unknown = null;
      try {
        json = bodyAt >= 0 ? JSON.parse(text.slice(bodyAt + 4)) : null;
      } catch {
        json = null;
      }
      resolve({ text, status: status ? Number(status) : null, json, ms: Date.now() - started, closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('data', (d: Buffer) => received.push(d));
    socket.on('close', () => finish(true));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // the server may reset a connection it refused while we were still writing
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') finish(true);
      else if (!done) reject(err);
    });
    socket.on('connect', async () => {
      for (const c of chunks) {
        if (done || socket.destroyed) return;
        socket.write(c);
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
    });
  });
}
