import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import openapiTS, { astToString } from 'openapi-typescript';
import YAML from 'yaml';
import { renderOpenApi } from '../src/api/openapi.js';

describe('openapi/openapi.yaml', () => {
  it('is exactly what the route schemas generate (run `npm run openapi` when this fails)', async () => {
    const onDisk = readFileSync(new URL('../openapi/openapi.yaml', import.meta.url), 'utf8');
    assert.equal(onDisk, await renderOpenApi());
  });

  it('has the typed client generated from it (src/client/schema.ts; run `npm run openapi` when this fails)', async () => {
    const onDisk = readFileSync(new URL('../src/client/schema.ts', import.meta.url), 'utf8');
    assert.ok(onDisk.endsWith(astToString(await openapiTS(await renderOpenApi()))));
  });

  it('documents every endpoint of the API', async () => {
    const doc = YAML.parse(await renderOpenApi()) as { paths: Record<string, Record<string, unknown>> };
    const ops = Object.entries(doc.paths).flatMap(([p, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${p}`));
    for (const op of [
      'POST /v1/jobs',
      'GET /v1/jobs',
      'GET /v1/jobs/{id}',
      'GET /v1/jobs/{id}/attempts',
      'POST /v1/jobs/{id}/cancel',
      'POST /v1/jobs/{id}/retry',
      'GET /v1/dlq',
      'GET /healthz',
      'GET /readyz',
      'GET /metrics',
    ]) {
      assert.ok(ops.includes(op), `${op} is documented`);
    }
  });
});
