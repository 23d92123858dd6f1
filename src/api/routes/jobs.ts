import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiContext } from '../context.js';
import { ApiError } from '../errors.js';
import { answerFor, prepareJob, requireReady, traceCreate } from '../create-job.js';
import type { CreateOutcome } from '../../domain/job.js';
import { incomingTrace, traceIdOf } from '../../domain/trace-context.js';
import { attemptView, jobJson, jobPageJson, preserialized } from '../render.js';
import {
  attemptListSchema,
  createJobBodySchema,
  createJobHeadersSchema,
  errorSchema,
  jobIdSchema,
  jobPageSchema,
  jobSchema,
  listJobsQuerySchema,
} from '../schemas.js';

const idParams = z.object({ id: z.string().max(200) });
const JSON_TYPE = 'application/json; charset=utf-8';

export function requireJobId(id: string): string {
  if (!jobIdSchema.safeParse(id).success) throw new ApiError(404, 'not_found', 'job not found');
  return id;
}

export function jobRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { store, clock } = ctx;

  r.post('/v1/jobs', {
    schema: {
      operationId: 'createJob',
      summary: 'Create a job',
      description:
        'Stores a job durably and schedules its delivery. With an Idempotency-Key, a replay returns the original job (200, Idempotent-Replayed: true). A duplicate within the dedupe window returns the original job (200, Deduplicated: true).',
      tags: ['jobs'],
      headers: createJobHeadersSchema,
      body: createJobBodySchema,
      response: { 401: errorSchema, 403: errorSchema, 200: jobSchema, 201: jobSchema, 400: errorSchema, 413: errorSchema, 415: errorSchema, 422: errorSchema, 503: errorSchema },
    },
  }, async (req, reply) => {
    requireReady(ctx, reply);
    const body = req.body;
    const now = clock.now();
    // the payload's own text, as sent (json-body.ts); re-encoding would round numbers past 2^53
    const newJob = prepareJob(ctx, body, req.payloadJson ?? JSON.stringify(body.payload), req.headers['idempotency-key'] ?? null, now);
    const span = traceCreate(ctx, incomingTrace(req.raw.headers.traceparent, req.raw.headers.tracestate), newJob, now);
    let outcome: CreateOutcome;
    try {
      outcome = await ctx.intake.submit(newJob);
    } catch (err) {
      span?.end(null, clock.now());
      throw err;
    }
    span?.end(outcome, clock.now());
    const answer = answerFor(outcome);
    if (answer.status === 422) throw answer.error;
    reply.type(JSON_TYPE).code(answer.status);
    if (answer.status === 201) reply.header('location', `/v1/jobs/${answer.job.id}`);
    if (answer.header !== null) reply.header(answer.header, 'true');
    return reply.send(preserialized(jobJson(answer.job, now)));
  });

  r.get('/v1/jobs', {
    schema: {
      operationId: 'listJobs',
      summary: 'List jobs, newest first',
      tags: ['jobs'],
      querystring: listJobsQuerySchema,
      response: { 401: errorSchema, 403: errorSchema, 200: jobPageSchema, 400: errorSchema },
    },
  }, async (req, reply) => {
    const { limit, cursor, ...filter } = req.query;
    const page = await store.listJobs(filter, limit, cursor ?? null);
    return reply.type(JSON_TYPE).send(preserialized(jobPageJson(page.data, page.next_cursor, clock.now())));
  });

  r.get('/v1/jobs/:id', {
    schema: { operationId: 'getJob', summary: 'Get a job', tags: ['jobs'], params: idParams, response: { 401: errorSchema, 403: errorSchema, 200: jobSchema, 404: errorSchema } },
  }, async (req, reply) => {
    const job = await store.getJob(requireJobId(req.params.id));
    if (!job) throw new ApiError(404, 'not_found', 'job not found');
    return reply.type(JSON_TYPE).send(preserialized(jobJson(job, clock.now())));
  });

  r.get('/v1/jobs/:id/attempts', {
    schema: {
      operationId: 'listAttempts',
      summary: "A job's delivery attempts, oldest first",
      tags: ['jobs'],
      params: idParams,
      response: { 401: errorSchema, 403: errorSchema, 200: attemptListSchema, 404: errorSchema },
    },
  }, async (req) => {
    const id = requireJobId(req.params.id);
    const job = await store.getJob(id);
    if (!job) throw new ApiError(404, 'not_found', 'job not found');
    const attempts = await store.listAttempts(id);
    return { data: attempts.map(attemptView) };
  });

  r.post('/v1/jobs/:id/cancel', {
    schema: {
      operationId: 'cancelJob',
      summary: 'Cancel a job',
      description: 'A scheduled, queued or retrying job is cancelled at once; a running one finishes its attempt and gets no further one.',
      tags: ['jobs'],
      params: idParams,
      response: { 401: errorSchema, 403: errorSchema, 200: jobSchema, 404: errorSchema, 409: errorSchema },
    },
  }, async (req, reply) => {
    const res = await store.cancelJob(requireJobId(req.params.id), clock.now());
    if (res.kind === 'not_found') throw new ApiError(404, 'not_found', 'job not found');
    if (res.kind === 'conflict') throw new ApiError(409, 'conflict', `job is already ${res.job.status}`, { status: res.job.status });
    ctx.engine.forget(res.job.id);
    ctx.events.emit({ type: 'job.status', job_id: res.job.id, tenant_id: res.job.tenant_id, from: null, to: 'cancelled', reason: 'cancel', trace_id: traceIdOf(res.job.traceparent) });
    return reply.type(JSON_TYPE).send(preserialized(jobJson(res.job, clock.now())));
  });

  r.post('/v1/jobs/:id/retry', {
    schema: {
      operationId: 'retryJob',
      summary: 'Retry a failed or cancelled job',
      description: 'Queues the job again with a fresh attempt budget; its attempt history is kept.',
      tags: ['jobs'],
      params: idParams,
      response: { 401: errorSchema, 403: errorSchema, 200: jobSchema, 404: errorSchema, 409: errorSchema },
    },
  }, async (req, reply) => {
    const res = await store.retryJob(requireJobId(req.params.id), clock.now());
    if (res.kind === 'not_found') throw new ApiError(404, 'not_found', 'job not found');
    if (res.kind === 'conflict') {
      throw new ApiError(409, 'conflict', `only failed or cancelled jobs can be retried; this one is ${res.job.status}`, { status: res.job.status });
    }
    ctx.engine.notifyDue(clock.now());
    ctx.events.emit({ type: 'job.status', job_id: res.job.id, tenant_id: res.job.tenant_id, from: null, to: 'queued', reason: 'retry', trace_id: traceIdOf(res.job.traceparent) });
    return reply.type(JSON_TYPE).send(preserialized(jobJson(res.job, clock.now())));
  });
}
