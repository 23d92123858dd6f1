// Starts a real PulseGate in this process on a loopback port with a fresh SQLite file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { startService, type Service, type ServiceOverrides } from '../../src/service.js';

export interface TestService extends Service {
  dir: string;
  dbPath: string;
  /** fetch() against the service: path is like '/v1/jobs'. */
  request(path: string, init?: RequestInit): Promise<Response>;
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  get(path: string): Promise<Response>;
  /** Stops the service (if still running) and removes its files. */
  cleanup(): Promise<void>;
}

export async function startTestService(
  env: Record<string, string> = {},
  overrides: ServiceOverrides = {},
  dir = mkdtempSync(join(tmpdir(), 'pulsegate-test-')),
): Promise<TestService> {
  const dbPath = join(dir, 'pulsegate.db');
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_PATH: dbPath,
    LOG_LEVEL: 'silent',
    ALLOW_PRIVATE_DESTINATIONS: 'true',
    SQLITE_SYNCHRONOUS: 'NORMAL',
    // in-process tests read and drive the engine directly; test/engine/engine-thread.test.ts and the process tests run it on its thread
    ENGINE_THREAD: 'false',
    ...env,
  });
  const svc = await startService(config, overrides);
  const request = (path: string, init?: RequestInit) => fetch(svc.url + path, init);
  return {
    ...svc,
    dir,
    dbPath,
    request,
    post: (path, body, headers = {}) =>
      request(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      }),
    get: (path) => request(path),
    async cleanup() {
      await svc.stop(1000).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A valid job body for a destination, with overrides merged in. */
export function jobBody(url: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    tenant_id: 'demo',
    type: 'webhook.dispatch',
    payload: { order_id: 42, status: 'completed' },
    destination: { url, method: 'POST', timeout_ms: 5000 },
    ...extra,
  };
}

/** Polls fn until it returns a truthy value (bounded). */
export async function eventually<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 10_000, everyMs = 20): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`condition not met in ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
}
