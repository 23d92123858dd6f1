// Bulk commands by filter: replay the dead-letter queue, cancel jobs not yet delivered. Both answer
// how many jobs and which destinations, have a dry run to confirm that first, and are safe to
// repeat with an Idempotency-Key (see ../bulk-command.ts).
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { JobSelector } from '../../domain/bulk.js';
import { runBulk, type BulkCommand } from '../bulk-command.js';
import { bulkCancelBodySchema, bulkResultSchema, bulkRetryBodySchema } from '../bulk-schemas.js';
import type { ApiContext } from '../context.js';
import { createJobHeadersSchema, errorSchema } from '../schemas.js';

const JSON_TYPE = 'application/json; charset=utf-8';
const ERRORS = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 413: errorSchema, 415: errorSchema, 422: errorSchema };

const ms = (t: string | undefined) => (t === undefined ? undefined : Date.parse(t));

/** The filters every bulk command shares, as a store selector (absent fields left out). */
function baseSelector(b: { tenant_id?: string; type?: string; destination_origin?: string; error_kind?: JobSelector['error_kind']; status_code?: number }): JobSelector {
  return dropUndefined({ tenant_id: b.tenant_id, type: b.type, origin: b.destination_origin, error_kind: b.error_kind, last_status_code: b.status_code });
}

function dropUndefined(sel: JobSelector): JobSelector {
  return Object.fromEntries(Object.entries(sel).filter(([, v]) => v !== undefined)) as JobSelector;
}

async function answer(ctx: ApiContext, reply: FastifyReply, cmd: BulkCommand) {
  const { result, replayed } = await runBulk(ctx, cmd);
  if (replayed) reply.header('idempotent-replayed', 'true');
  return reply.code(200).type(JSON_TYPE).send(result);
}

export function bulkRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post('/v1/dlq/retry', {
    schema: {
      operationId: 'retryDeadLetters',
      summary: 'Retry failed jobs by filter',
      description:
        'Queues every failed job that matches the filters again with a fresh attempt budget (as POST /v1/jobs/{id}/retry), at most `limit`, oldest first, and answers how many and to which destinations. Jobs go back to the queue, so each destination receives them at its rate limit. With `dry_run: true` nothing changes: the answer says what would be retried. With an Idempotency-Key, a repeat answers the first call\'s result (Idempotent-Replayed: true) and retries nothing again.',
      tags: ['dlq'],
      headers: createJobHeadersSchema,
      body: bulkRetryBodySchema,
      response: { 200: bulkResultSchema, ...ERRORS },
    },
  }, async (req, reply) => {
    const b = req.body;
    const selector = dropUndefined({ ...baseSelector(b), statuses: ['failed'], completed_from: ms(b.failed_after), completed_before: ms(b.failed_before) });
    return answer(ctx, reply, {
      action: 'retry',
      selector,
      limit: b.limit ?? null,
      dryRun: b.dry_run,
      idempotencyKey: req.headers['idempotency-key'] ?? null,
    });
  });

  r.post('/v1/jobs/cancel', {
    schema: {
      operationId: 'cancelJobs',
      summary: 'Cancel jobs by filter',
      description:
        'Cancels every scheduled, queued or retrying job that matches the filters (at most `limit`, oldest first) and answers how many and to which destinations. Running jobs are not touched (cancel them one by one: they finish their attempt). `dry_run` and Idempotency-Key as for POST /v1/dlq/retry.',
      tags: ['jobs'],
      headers: createJobHeadersSchema,
      body: bulkCancelBodySchema,
      response: { 200: bulkResultSchema, ...ERRORS },
    },
  }, async (req, reply) => {
    const b = req.body;
    const selector = dropUndefined({ ...baseSelector(b), statuses: b.statuses, created_from: ms(b.created_after), created_before: ms(b.created_before) });
    return answer(ctx, reply, {
      action: 'cancel',
      selector,
      limit: b.limit ?? null,
      dryRun: b.dry_run,
      idempotencyKey: req.headers['idempotency-key'] ?? null,
    });
  });
}
