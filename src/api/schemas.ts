// The API's shapes, defined once: fastify validates requests with them and the OpenAPI document
// (openapi/openapi.yaml) is generated from them.

import { z } from 'zod';
import { ATTEMPT_OUTCOMES, ERROR_KINDS } from '../domain/attempt.js';
import { isJsonContentType, isReservedHeader } from '../domain/headers.js';
import { HTTP_METHODS, JOB_STATUSES } from '../domain/job.js';
import { MIN_RPS } from '../domain/time.js';
import { ERROR_CODES } from './errors.js';

export const MAX_HEADERS = 50;
export const DAY_MS = 86_400_000;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// visible ASCII, tabs and spaces, and obs-text; never CR, LF or NUL (no header injection)
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
// A cross-field rule runs even when another field already failed (zod skips it after an aborting
// issue by default), so one answer names every bad field.
const evenAfterOtherIssues = {
  when: (p: { value: unknown }) => typeof p.value === 'object' && p.value !== null && !Array.isArray(p.value),
};

export const tenantIdSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._:-]+$/, 'must be 1..128 characters of A-Z a-z 0-9 . _ : -');

export const jobIdSchema = z
  .string()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'must be a job id (UUIDv7)');

const headersSchema = z
  .record(
    z.string().min(1).max(256).regex(HEADER_NAME, 'must be an HTTP header name'),
    z.string().max(8192).regex(HEADER_VALUE, 'must not contain control characters'),
  )
  .superRefine((headers, ctx) => {
    const names = Object.keys(headers);
    if (names.length > MAX_HEADERS) ctx.addIssue({ code: 'custom', message: `at most ${MAX_HEADERS} headers` });
    const seen = new Set<string>();
    for (const name of names) {
      const lower = name.toLowerCase();
      if (isReservedHeader(name)) {
        ctx.addIssue({ code: 'custom', path: [name], message: `header ${name} is set by PulseGate or the connection and may not be given` });
      }
      if (lower === 'content-type' && !isJsonContentType(headers[name] ?? '')) {
        ctx.addIssue({ code: 'custom', path: [name], message: 'Content-Type may only be a JSON media type (application/json or application/*+json, charset=utf-8): the body is JSON' });
      }
      if (seen.has(lower)) ctx.addIssue({ code: 'custom', path: [name], message: `header ${name} is given twice` });
      seen.add(lower);
    }
  }, evenAfterOtherIssues);

export const destinationSchema = z.strictObject({
  url: z
    .string()
    .max(2048)
    .refine((u) => {
      try {
        const p = new URL(u);
        return (p.protocol === 'http:' || p.protocol === 'https:') && p.hostname.length > 0;
      } catch {
        return false;
      }
    }, 'must be an absolute http or https URL'),
  method: z.enum(HTTP_METHODS).default('POST'),
  timeout_ms: z.number().int().min(100).max(60_000).default(10_000),
  headers: headersSchema.default({}),
});

export const retrySchema = z
  .strictObject({
    max_attempts: z.number().int().min(1).max(50).default(5),
    base_delay_ms: z.number().int().min(0).max(DAY_MS).default(1000),
    max_delay_ms: z.number().int().min(0).max(DAY_MS).optional(),
  })
  .refine(
    (r) => !(typeof r.max_delay_ms === 'number' && typeof r.base_delay_ms === 'number' && r.max_delay_ms < r.base_delay_ms),
    { message: 'max_delay_ms must be >= base_delay_ms', path: ['max_delay_ms'], ...evenAfterOtherIssues },
  )
  .transform((r) => ({ ...r, max_delay_ms: r.max_delay_ms ?? Math.max(30_000, r.base_delay_ms) }));

export const rateLimitSchema = z.strictObject({
  rps: z.number().min(MIN_RPS).max(10_000).describe(`requests per second, ${MIN_RPS} (one per 1,000 s) to 10,000`),
  burst: z.number().int().min(1).max(100_000).optional(),
  max_in_flight: z
    .number()
    .int()
    .min(1)
    .max(10_000)
    .optional()
    .describe('attempts in flight at most to this destination origin for this tenant (default DESTINATION_MAX_IN_FLIGHT)'),
});

const createJobFields = {
  tenant_id: tenantIdSchema,
  type: z.string().min(1).max(128),
  payload: z.unknown().refine((v) => v !== undefined, 'is required'),
  destination: destinationSchema,
  retry: retrySchema.optional(),
  rate_limit: rateLimitSchema.nullable().optional(),
  run_at: z.iso.datetime({ offset: true }).optional(),
  delay_ms: z.number().int().min(0).max(365 * DAY_MS).optional(),
  dedupe_key: z.string().min(1).max(255).optional(),
};
const oneStartTime = (b: { run_at?: string; delay_ms?: number }) => !(b.run_at !== undefined && b.delay_ms !== undefined);
const oneStartTimeIssue = { message: 'give run_at or delay_ms, not both', path: ['delay_ms'], ...evenAfterOtherIssues };

export const createJobBodySchema = z.strictObject(createJobFields).refine(oneStartTime, oneStartTimeIssue).meta({ id: 'CreateJobRequest' });
export type CreateJobBody = z.infer<typeof createJobBodySchema>;

const idempotencyKeySchema = z.string().min(1).max(255);
/** W3C Trace Context. Malformed values are ignored, as the spec says (no error): the job then has no trace. */
export const traceHeadersSchema = z.object({
  traceparent: z
    .string()
    .optional()
    .describe('W3C traceparent (00-<trace id>-<parent id>-<flags>): the job joins this trace and each delivery continues it. Malformed: ignored.'),
  tracestate: z.string().optional().describe('W3C tracestate, stored with the job and sent with each delivery (kept only with a valid traceparent).'),
});
export const createJobHeadersSchema = z.object({
  'idempotency-key': idempotencyKeySchema.optional(),
  ...traceHeadersSchema.shape,
});

/** Most jobs one batch request creates. */
export const MAX_BATCH_JOBS = 1000;
/** One job of a batch: what POST /v1/jobs takes, and its Idempotency-Key as a field. */
export const batchItemSchema = z
  .strictObject({ ...createJobFields, idempotency_key: idempotencyKeySchema.optional() })
  .refine(oneStartTime, oneStartTimeIssue);
/** Each item is validated on its own by the route, so one bad item does not refuse the others. */
export const batchBodySchema = z.strictObject({
  jobs: z.array(z.unknown()).min(1).max(MAX_BATCH_JOBS).describe(`1..${MAX_BATCH_JOBS} jobs, each what POST /v1/jobs takes, plus an optional idempotency_key`),
}).meta({ id: 'BatchCreateRequest' });

const time = z.iso.datetime().describe('RFC 3339, UTC');

export const jobSchema = z.object({
  id: z.string(),
  tenant_id: z.string(),
  type: z.string(),
  status: z.enum(JOB_STATUSES),
  payload: z.unknown(),
  destination: z.object({
    url: z.string(),
    method: z.enum(HTTP_METHODS),
    timeout_ms: z.number().int(),
    headers: z.record(z.string(), z.string()),
  }),
  retry: z.object({ max_attempts: z.number().int(), base_delay_ms: z.number().int(), max_delay_ms: z.number().int() }),
  rate_limit: z.object({ rps: z.number(), burst: z.number().int(), max_in_flight: z.number().int().optional() }).nullable(),
  run_at: time,
  attempts: z.number().int(),
  next_attempt_at: time.nullable(),
  last_error: z.string().nullable(),
  last_status_code: z.number().int().nullable(),
  idempotency_key: z.string().nullable(),
  dedupe_key: z.string().nullable(),
  created_at: time,
  updated_at: time,
  completed_at: time.nullable(),
  trace_id: z.string().nullable().describe("The job's W3C trace id (32 hex digits): its create span and every delivery attempt belong to this trace. Null: no trace."),
}).meta({ id: 'Job' });

export const attemptSchema = z.object({
  attempt: z.number().int(),
  started_at: time,
  finished_at: time,
  duration_ms: z.number().int(),
  outcome: z.enum(ATTEMPT_OUTCOMES),
  error_kind: z.enum(ERROR_KINDS).nullable(),
  status_code: z.number().int().nullable(),
  error: z.string().nullable(),
  response_body: z.string().nullable(),
}).meta({ id: 'Attempt' });

export const errorSchema = z.object({
  error: z.object({
    code: z.enum(ERROR_CODES),
    message: z.string(),
    details: z.unknown().optional(),
  }),
}).meta({ id: 'Error' });

export const batchResultSchema = z.object({
  data: z.array(
    z.object({
      index: z.number().int().describe('the position of the job in the request'),
      status: z.number().int().describe('201 created, 200 replayed or deduplicated, or the 4xx of the error'),
      idempotent_replayed: z.boolean().optional(),
      deduplicated: z.boolean().optional(),
      job: jobSchema.optional(),
      error: errorSchema.shape.error.optional(),
    }),
  ),
}).meta({ id: 'BatchCreateResult' });

export const jobPageSchema = z.object({ data: z.array(jobSchema), next_cursor: z.string().nullable() }).meta({ id: 'JobPage' });
export const attemptListSchema = z.object({ data: z.array(attemptSchema) }).meta({ id: 'AttemptList' });

const limitSchema = z.coerce.number().int().min(1).max(1000).default(50);
const cursorSchema = z.string().min(1).max(200).optional();

export const listJobsQuerySchema = z.strictObject({
  tenant_id: tenantIdSchema.optional(),
  status: z.enum(JOB_STATUSES).optional(),
  type: z.string().min(1).max(128).optional(),
  limit: limitSchema,
  cursor: cursorSchema,
});

export const dlqQuerySchema = z.strictObject({
  tenant_id: tenantIdSchema.optional(),
  limit: limitSchema,
  cursor: cursorSchema,
});

export const jobParamsSchema = z.object({ id: jobIdSchema });
