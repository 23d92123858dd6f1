import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Validator } from '@seriousme/openapi-schema-validator';
import openapiTS, { astToString } from 'openapi-typescript';
import YAML from 'yaml';
import { renderOpenApi } from '../src/api/openapi.js';
import { ERROR_CODES } from '../src/api/errors.js';
import { generateKey } from '../src/auth/keys.js';
import { startTestService, type TestService } from './support/service.js';

type Json = Record<string, unknown>;
interface Operation {
  operationId?: string;
  requestBody?: { content: Record<string, { schema: Json; examples?: Record<string, { value: unknown }> }> };
  responses: Record<string, { description?: string; headers?: Record<string, unknown>; content?: Record<string, { schema: Json; examples?: Record<string, { value: unknown }> }> }>;
  security?: unknown[];
}
interface Doc {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json>; headers: Record<string, Json> };
}

const OPERATIONS = [
  'POST /v1/jobs',
  'GET /v1/jobs',
  'GET /v1/jobs/{id}',
  'GET /v1/jobs/{id}/attempts',
  'POST /v1/jobs/{id}/cancel',
  'POST /v1/jobs/{id}/retry',
  'POST /v1/jobs/cancel',
  'POST /v1/jobs/batch',
  'GET /v1/dlq',
  'POST /v1/dlq/retry',
  'GET /v1/destinations',
  'POST /v1/destinations/{id}/reset',
  'POST /v1/schedules',
  'GET /v1/schedules',
  'GET /v1/schedules/{id}',
  'POST /v1/schedules/{id}/pause',
  'POST /v1/schedules/{id}/resume',
  'DELETE /v1/schedules/{id}',
  'GET /healthz',
  'GET /readyz',
  'GET /metrics',
  'GET /openapi.json',
];

describe('the OpenAPI document', () => {
  let doc: Doc;
  let text: string;
  const operations = () =>
    Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ key: `${method.toUpperCase()} ${path}`, path, op })));

  before(async () => {
    text = await renderOpenApi();
    doc = YAML.parse(text) as Doc;
  });

  it('has the typed client generated from it (src/client/schema.ts; run `npm run openapi` when this fails)', async () => {
    const onDisk = readFileSync(new URL('../src/client/schema.ts', import.meta.url), 'utf8');
    assert.ok(onDisk.endsWith(astToString(await openapiTS(text))));
  });

  it('is exactly what openapi/openapi.yaml holds (run `npm run openapi` when this fails)', () => {
    assert.equal(readFileSync(new URL('../openapi/openapi.yaml', import.meta.url), 'utf8'), text);
  });

  it('documents every endpoint of the API, each with its own operationId', () => {
    assert.deepEqual(operations().map((o) => o.key).sort(), [...OPERATIONS].sort());
    const ids = operations().map((o) => o.op.operationId);
    for (const id of ids) assert.match(String(id), /^[a-z][A-Za-z]+$/);
    assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
  });

  it('defines each shared shape once, as a component, never a copy per route', () => {
    for (const name of ['Job', 'JobPage', 'Attempt', 'AttemptList', 'Error', 'CreateJobRequest', 'BulkRetryRequest', 'BulkCancelRequest', 'BulkResult']) {
      assert.ok(doc.components.schemas[name], `components.schemas.${name}`);
    }
    // a field only the job has is declared in its component alone
    const declaring = (node: unknown, where: string, out: string[] = []): string[] => {
      if (node === null || typeof node !== 'object') return out;
      for (const [k, v] of Object.entries(node)) {
        if (k === 'properties' && v && typeof v === 'object' && 'next_attempt_at' in v) out.push(where);
        declaring(v, `${where}.${k}`, out);
      }
      return out;
    };
    assert.deepEqual(declaring(doc.paths, 'paths'), [], 'no route inlines the job');
    assert.deepEqual(declaring(doc.components.schemas, 'schemas'), ['schemas.Job']);
  });

  it('lists the stable error codes of src/api/errors.ts as the enum of Error.code', () => {
    const code = ((doc.components.schemas.Error as { properties: { error: { properties: { code: { enum: string[] } } } } }).properties.error.properties.code);
    assert.deepEqual(code.enum, [...ERROR_CODES]);
  });

  it('documents 401 with WWW-Authenticate, 400, 408 and 500 on every /v1 operation (413 and 415 on a POST), and describes every answer', () => {
    for (const { key, path, op } of operations()) {
      for (const [status, res] of Object.entries(op.responses)) {
        assert.ok(res.description && res.description !== 'Default Response', `${key} ${status} has a description`);
      }
      if (!path.startsWith('/v1/')) {
        assert.deepEqual(op.security, [], `${key} needs no key`);
        continue;
      }
      assert.ok(op.responses['401']?.headers?.['WWW-Authenticate'], `${key} 401 WWW-Authenticate`);
      for (const status of ['400', '408', '500']) assert.ok(op.responses[status], `${key} ${status}`);
      if (key.startsWith('POST')) for (const status of ['413', '415']) assert.ok(op.responses[status], `${key} ${status}`);
    }
  });

  it('documents the response headers the API sends', () => {
    const headers = (key: string, status: string) => Object.keys(operations().find((o) => o.key === key)?.op.responses[status]?.headers ?? {});
    assert.deepEqual(headers('POST /v1/jobs', '201'), ['Location']);
    assert.deepEqual(headers('POST /v1/jobs', '200').sort(), ['Deduplicated', 'Idempotent-Replayed']);
    assert.deepEqual(headers('POST /v1/jobs', '503'), ['Retry-After']);
    assert.deepEqual(headers('POST /v1/dlq/retry', '200'), ['Idempotent-Replayed']);
    assert.deepEqual(headers('POST /v1/jobs/cancel', '200'), ['Idempotent-Replayed']);
    assert.deepEqual(Object.keys(doc.components.headers).sort(), ['Deduplicated', 'Idempotent-Replayed', 'Location', 'Retry-After', 'WWW-Authenticate']);
  });

  it('resolves every $ref', () => {
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1] as string);
    assert.ok(refs.length > 0);
    for (const ref of refs) {
      const [, kind, name] = /^#\/components\/(schemas|headers)\/(.+)$/.exec(ref) ?? [];
      assert.ok(kind && name && (doc.components as unknown as Record<string, Record<string, unknown>>)[kind]?.[name], `${ref} resolves`);
    }
  });

  it('has request and response examples that each pass their own schema', () => {
    // the document's schemas are JSON Schema 2020-12 (OpenAPI 3.1): each compiles, and each
    // example validates against the schema it illustrates
    const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
    for (const [name, schema] of Object.entries(doc.components.schemas)) ajv.addSchema(schema, `#/components/schemas/${name}`);
    let checked = 0;
    const check = (where: string, media: { schema: Json; examples?: Record<string, { value: unknown }> } | undefined) => {
      if (!media?.examples) return;
      const validate = ajv.compile(media.schema);
      for (const [name, { value }] of Object.entries(media.examples)) {
        assert.ok(validate(value), `${where} example ${name}: ${ajv.errorsText(validate.errors)}`);
        checked++;
      }
    };
    for (const { key, op } of operations()) {
      check(`${key} request`, op.requestBody?.content['application/json']);
      for (const [status, res] of Object.entries(op.responses)) check(`${key} ${status}`, res.content?.['application/json']);
    }
    for (const key of ['POST /v1/jobs', 'POST /v1/dlq/retry', 'POST /v1/jobs/cancel']) {
      assert.ok(operations().find((o) => o.key === key)?.op.requestBody?.content['application/json']?.examples, `${key} has request examples`);
    }
    assert.ok(checked >= 15, `${checked} examples checked`);
  });

  it('is a valid OpenAPI 3.1 document by its published schema', async () => {
    const res = await new Validator().validate(doc as never);
    assert.ok(res.valid, JSON.stringify(res.errors));
  });
});

describe('GET /openapi.json', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ API_KEYS: `demo:${generateKey().key}` });
  });
  after(() => svc.cleanup());

  it('serves Swagger UI at /docs without an API key, from its own files under a CSP', async () => {
    const res = await svc.get('/docs');
    assert.equal(res.status, 200, 'redirects followed to the page');
    assert.match(await res.text(), /swagger-ui/i);
    assert.ok(res.headers.get('content-security-policy'), 'a Content-Security-Policy');
    const bundle = await svc.get('/docs/static/swagger-ui-bundle.js');
    assert.equal(bundle.status, 200);
    await bundle.arrayBuffer();
  });

  it('serves the document without an API key, the same as openapi/openapi.yaml', async () => {
    const res = await svc.get('/openapi.json');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const served = (await res.json()) as Json;
    assert.deepEqual(served, YAML.parse(readFileSync(new URL('../openapi/openapi.yaml', import.meta.url), 'utf8')));
    // while /v1 still needs one
    assert.equal((await svc.get('/v1/jobs')).status, 401);
  });
});
