// The pages beside the API (/docs, /openapi.json, /console) are answered by a documented copy of
// the API that has no authentication (src/api/pages.ts). A path that climbs out of a page's prefix
// (/console/../v1/jobs: the client sends it as is, the copy resolves it to /v1/jobs) must not reach
// the copy's API routes: with API keys set, it is a 404 and never the jobs or the metrics.

import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { generateKey } from '../../src/auth/keys.js';
import { startTestService, type TestService } from '../support/service.js';

/** GET with the path sent exactly as given (fetch would resolve the dots first). */
function rawGet(base: string, path: string): Promise<{ status: number; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('pages beside the API', () => {
  let svc: TestService;
  const key = generateKey().key;

  before(async () => {
    svc = await startTestService({ API_KEYS: `acme:${key}` });
  });
  after(async () => {
    await svc.cleanup();
  });

  it('serves the pages without a key', async () => {
    assert.equal((await rawGet(svc.url, '/openapi.json')).status, 200);
    assert.equal((await rawGet(svc.url, '/docs')).status, 200);
    assert.equal((await rawGet(svc.url, '/console/')).status, 200);
  });

  it('answers 404, not the API, to a path that climbs out of a page', async () => {
    assert.equal((await rawGet(svc.url, '/v1/jobs')).status, 401);
    for (const path of ['/console/../v1/jobs', '/docs/../v1/jobs', '/console/%2e%2e/v1/jobs', '/docs/static/../../v1/jobs', '/console/../metrics', '/console/../v1/dlq']) {
      const res = await rawGet(svc.url, path);
      assert.equal(res.status, 404, `${path}: ${res.status} ${res.body.slice(0, 120)}`);
      assert.doesNotMatch(res.body, /"data"|pulsegate_|process_cpu/, path);
    }
  });
});
