// POST /v1/jobs/batch: up to MAX_BATCH_JOBS jobs in one request, each validated and answered on its
// own (one bad item refuses only itself), every accepted one written in ONE transaction with
// idempotency (an item's `idempotency_key`) and dedupe per item, as a single create would.
// The answer is 200 with one entry per item, in order: the job (201 created, 200 replayed or
// deduplicated) or its error (the status and code a single create would have answered).

import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { CreateOutcome, NewJob } from '../../domain/job.js';
import { incomingTrace } from '../../domain/trace-context.js';
import type { ApiContext } from '../context.js';
import { answerFor, prepareJob, requireReady, traceCreate } from '../create-job.js';
import { ApiError, errorBody, zodIssueFields } from '../errors.js';
import { BATCH_ROUTE } from '../json-body.js';
import { jobJson, preserialized } from '../render.js';
import { batchBodySchema, batchItemSchema, batchResultSchema, errorSchema, traceHeadersSchema } from '../schemas.js';

const JSON_TYPE = 'application/json; charset=utf-8';

function errorEntry(index: number, err: ApiError): string {
  return `{"index":${index},"status":${err.status},${errorBody(err.code, err.message, err.details).slice(1)}`;
}

export function batchRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.withTypeProvider<ZodTypeProvider>().post(BATCH_ROUTE, {
    schema: {
      operationId: 'createJobsBatch',
      summary: 'Create up to 1,000 jobs in one request',
      description:
        'Each item is what POST /v1/jobs takes, with its Idempotency-Key as the field `idempotency_key`. Items are validated and answered one by one; all accepted ones are written in one transaction. A tenant key may only name its own tenant in every item (else 403 for the whole request).',
      tags: ['jobs'],
      headers: traceHeadersSchema,
      body: batchBodySchema,
      response: { 200: batchResultSchema, 400: errorSchema, 401: errorSchema, 403: errorSchema, 413: errorSchema, 415: errorSchema, 422: errorSchema, 503: errorSchema },
    },
  }, async (req, reply) => {
    requireReady(ctx, reply);
    const now = ctx.clock.now();
    const items = req.body.jobs;
    const payloads = req.itemPayloads ?? [];
    const entries: string[] = new Array<string>(items.length);
    const accepted: { index: number; job: NewJob }[] = [];
    items.forEach((item, index) => {
      const parsed = batchItemSchema.safeParse(item);
      if (!parsed.success) {
        const fields = zodIssueFields(`body.jobs.${index}`, parsed.error.issues);
        const summary = fields.slice(0, 10).map((f) => `${f.field} ${f.message}`).join('; ');
        entries[index] = errorEntry(index, new ApiError(422, 'validation_failed', `invalid job: ${summary}`, { fields: fields.slice(0, 100) }));
        return;
      }
      const { idempotency_key, ...body } = parsed.data;
      try {
        accepted.push({ index, job: prepareJob(ctx, body, payloads[index] ?? JSON.stringify(body.payload), idempotency_key ?? null, now) });
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        entries[index] = errorEntry(index, err);
      }
    });
    // the request's trace context applies to every item: each job gets its own create span in it
    const incoming = incomingTrace(req.raw.headers.traceparent, req.raw.headers.tracestate);
    const spans = accepted.map((a) => traceCreate(ctx, incoming, a.job, now));
    let outcomes: CreateOutcome[] = [];
    try {
      if (accepted.length > 0) outcomes = await ctx.intake.submitMany(accepted.map((a) => a.job));
    } catch (err) {
      for (const span of spans) span?.end(null, ctx.clock.now());
      throw err;
    }
    const end = ctx.clock.now();
    outcomes.forEach((out, i) => spans[i]?.end(out, end));
    outcomes.forEach((out, i) => {
      const { index } = accepted[i]!;
      const answer = answerFor(out);
      if (answer.status === 422) {
        entries[index] = errorEntry(index, answer.error);
        return;
      }
      const flag = answer.header === 'idempotent-replayed' ? '"idempotent_replayed":true,' : answer.header === 'deduplicated' ? '"deduplicated":true,' : '';
      entries[index] = `{"index":${index},"status":${answer.status},${flag}"job":${jobJson(answer.job, now)}}`;
    });
    return reply.type(JSON_TYPE).send(preserialized(`{"data":[${entries.join(',')}]}`));
  });
}
