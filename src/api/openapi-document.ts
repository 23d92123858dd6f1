// The last pass over the OpenAPI document @fastify/swagger builds from the route schemas: what a
// zod schema cannot say about an operation. Shared schemas come from the zod ids (`.meta({ id })`)
// as components; this adds the response headers, the errors every /v1 operation can answer, one
// description per status, and the examples (openapi-examples.ts), and drops the component copies
// nothing refers to, so a client generator sees each shape once under its plain name.

import { jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { OPERATION_EXAMPLES } from './openapi-examples.js';

type Json = Record<string, unknown>;
type Operation = { operationId?: string; responses?: Record<string, Json>; requestBody?: { content?: Record<string, Json> }; security?: unknown[] };
type TransformInput = Parameters<typeof jsonSchemaTransformObject>[0];

const HEADERS: Record<string, Json> = {
  Location: { description: 'Path of the created job: /v1/jobs/{id}.', schema: { type: 'string' } },
  'Idempotent-Replayed': {
    description: 'Present (true) when the answer is the result of an earlier request with the same Idempotency-Key.',
    schema: { type: 'string', enum: ['true'] },
  },
  Deduplicated: {
    description: 'Present (true) when the answer is an earlier job with the same content or dedupe_key, within the dedupe window.',
    schema: { type: 'string', enum: ['true'] },
  },
  'Retry-After': { description: 'Seconds to wait before sending the request again.', schema: { type: 'integer', minimum: 0 } },
  'WWW-Authenticate': {
    description: 'The Bearer challenge (RFC 6750); `error="invalid_token"` when a key was sent but is not valid.',
    schema: { type: 'string', examples: ['Bearer realm="pulsegate"'] },
  },
};

/** Headers per operation and status, beyond WWW-Authenticate on every 401. */
const RESPONSE_HEADERS: Record<string, Record<string, string[]>> = {
  createJob: { 201: ['Location'], 200: ['Idempotent-Replayed', 'Deduplicated'], 503: ['Retry-After'] },
  retryDeadLetters: { 200: ['Idempotent-Replayed'] },
  cancelJobs: { 200: ['Idempotent-Replayed'] },
};

const STATUS_TEXT: Record<string, string> = {
  200: 'OK',
  201: 'Created',
  400: 'Malformed request: not JSON, not an object, or a bad query, header or path parameter (`validation_failed`).',
  401: 'No valid API key (`unauthorized`).',
  403: 'The API key may not act for this tenant, or the route needs an admin key (`forbidden`).',
  404: 'No such job, or a job of another tenant (`not_found`).',
  408: 'The request took longer than REQUEST_TIMEOUT_MS to arrive (`request_timeout`).',
  409: 'The job is in a status that does not allow this (`conflict`).',
  413: 'The body or payload is too large (`payload_too_large`).',
  415: 'The body is not application/json (`unsupported_media_type`).',
  422: 'A well-formed body that breaks a rule: every bad field is named in `details.fields` (`validation_failed`, `idempotency_key_reused`, `destination_not_allowed`).',
  500: 'Unexpected failure (`internal`).',
  503: 'The store cannot take writes now: the database is down or restarting, or its disk is full (`store_unavailable`); or the service is starting or shutting down (`overloaded`). Try again after Retry-After.',
};

const ERROR_REF = { $ref: '#/components/schemas/Error' };
const JSON_TYPE = 'application/json';

export function finishOpenApi(input: TransformInput): Json {
  const doc = jsonSchemaTransformObject(input) as Json & { paths: Record<string, Record<string, Operation>>; components: Json };
  const components = doc.components as { schemas?: Record<string, Json>; headers?: Json };
  components.headers = HEADERS;

  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      op.responses ??= {};
      if (path.startsWith('/v1/')) {
        // answered before any route runs: a URL with bad percent-encoding (400), a request slow to
        // arrive (408), a failure (500); and on every POST a body that is not JSON (400), too
        // large (413) or of another type (415); and, from any route that uses the store, the store
        // unable to answer (503 store_unavailable, with Retry-After)
        const generic = method === 'post' ? ['400', '408', '413', '415', '500', '503'] : ['400', '408', '500', '503'];
        for (const status of generic) op.responses[status] ??= { content: { [JSON_TYPE]: { schema: ERROR_REF } } };
      }
      for (const [status, response] of Object.entries(op.responses)) {
        if (response.description === undefined || response.description === 'Default Response') {
          response.description = STATUS_TEXT[status] ?? 'OK';
        }
        const names = [...(RESPONSE_HEADERS[op.operationId ?? '']?.[status] ?? []), ...(status === '401' ? ['WWW-Authenticate'] : [])];
        if (status === '503' && path.startsWith('/v1/') && !names.includes('Retry-After')) names.push('Retry-After');
        if (names.length > 0) response.headers = Object.fromEntries(names.map((n) => [n, { $ref: `#/components/headers/${n}` }]));
      }
      addExamples(op);
    }
  }
  if (components.schemas) components.schemas = keepReferenced(doc, components.schemas);
  return sortResponses(doc);
}

function addExamples(op: Operation): void {
  const ex = OPERATION_EXAMPLES[op.operationId ?? ''];
  if (!ex) return;
  const body = op.requestBody?.content?.[JSON_TYPE];
  if (body && ex.request) body.examples = named(ex.request);
  for (const [status, examples] of Object.entries(ex.responses ?? {})) {
    const content = op.responses?.[status]?.content as Record<string, Json> | undefined;
    const media = content?.[JSON_TYPE];
    if (media) media.examples = named(examples);
  }
}

const named = (examples: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(examples).map(([name, value]) => [name, { value }]));

/**
 * Drops component schemas nothing refers to, and gives an input-only schema (the type provider names
 * the request side of a schema `<id>Input`) its plain name when the plain one is unused.
 */
function keepReferenced(doc: Json, schemas: Record<string, Json>): Record<string, Json> {
  const prefix = '#/components/schemas/';
  const used = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (node === null || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string' && v.startsWith(prefix)) {
        const name = v.slice(prefix.length);
        if (!used.has(name)) {
          used.add(name);
          visit(schemas[name]);
        }
      } else visit(v);
    }
  };
  visit(doc.paths);
  const renames = new Map<string, string>();
  for (const name of used) {
    const plain = name.replace(/Input$/, '');
    if (plain !== name && !used.has(plain)) renames.set(name, plain);
  }
  const kept: Record<string, Json> = {};
  for (const name of [...used].sort((a, b) => (renames.get(a) ?? a).localeCompare(renames.get(b) ?? b))) {
    // zod marks each schema with a dialect and a fragment-only $id: the document's dialect already
    // says the first, and the second is not a valid $id in JSON Schema 2020-12
    const { $schema: _dialect, $id: _id, ...schema } = schemas[name] as Json;
    kept[renames.get(name) ?? name] = schema;
  }
  if (renames.size > 0) {
    const rewrite = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(rewrite);
      if (node === null || typeof node !== 'object') return;
      const o = node as Json;
      for (const [k, v] of Object.entries(o)) {
        if (k === '$ref' && typeof v === 'string' && v.startsWith(prefix)) {
          const to = renames.get(v.slice(prefix.length));
          if (to) o[k] = prefix + to;
        } else rewrite(v);
      }
    };
    rewrite(doc.paths);
    rewrite(kept);
  }
  return kept;
}

/** Responses in status order, so the document reads (and diffs) the same way every time. */
function sortResponses(doc: Json): Json {
  for (const methods of Object.values(doc.paths as Record<string, Record<string, Operation>>)) {
    for (const op of Object.values(methods)) {
      if (op.responses) op.responses = Object.fromEntries(Object.entries(op.responses).sort(([a], [b]) => a.localeCompare(b)));
    }
  }
  return doc;
}
