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

export interface Flood {
  status: number | null;
  /** The server closed the connection (before the client stopped waiting). */
  closedByServer: boolean;
  sentBytes: number;
}

/**
 * Sends `head`, then body bytes as fast as the server takes them, for at most `ms` and at most
 * 1 GiB (or the declared length); reports whether the server answered and closed the connection
 * meanwhile. Stops early once an answer came and every declared byte was sent.
 */
export function flood(url: string, head: string, chunked: boolean, ms = 5000): Promise<Flood> {
  // never more than the declared length: extra bytes would be a malformed next request, closed for that
  const declared = /content-length: (\d+)/i.exec(head);
  const limit = Math.min(1024 ** 3, declared ? Number(declared[1]) : Infinity);
  const { port, hostname } = new URL(url);
  const chunk = Buffer.alloc(64 * 1024, 0x31);
  const frame = chunked ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]) : chunk;
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    const received: Buffer[] = [];
    let sent = 0;
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const status = /^HTTP\/1\.1 (\d{3})/.exec(Buffer.concat(received).toString('latin1'))?.[1];
      resolve({ status: status ? Number(status) : null, closedByServer, sentBytes: sent });
    };
    const timer = setTimeout(() => finish(false), ms);
    let answered = false;
    socket.on('data', (d: Buffer) => {
      received.push(d);
      answered = true;
      // a complete answer and nothing left to send: the connection is the server's to keep
      if (sent >= limit) setTimeout(() => finish(false), 200);
    });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    const pump = () => {
      while (!done && sent < limit) {
        const part = frame.subarray(0, Math.min(frame.length, limit - sent));
        sent += part.length;
        if (!socket.write(part)) return void socket.once('drain', pump);
      }
      if (answered && sent >= limit) setTimeout(() => finish(false), 200);
    };
    socket.on('connect', () => {
      socket.write(head);
      pump();
    });
  });
}
