import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { ApiContext } from '../context.js';
import { jobPageJson, preserialized } from '../render.js';
import { dlqQuerySchema, errorSchema, jobPageSchema } from '../schemas.js';

/** The dead-letter queue: jobs that are `failed`, newest first. Retry one with POST /v1/jobs/{id}/retry, many by filter with POST /v1/dlq/retry (routes/bulk.ts). */
export function dlqRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.withTypeProvider<ZodTypeProvider>().get('/v1/dlq', {
    schema: {
      operationId: 'listDeadLetters',
      summary: 'List the dead-letter queue (failed jobs)',
      tags: ['dlq'],
      querystring: dlqQuerySchema,
      response: { 401: errorSchema, 403: errorSchema, 200: jobPageSchema, 400: errorSchema },
    },
  }, async (req, reply) => {
    const { limit, cursor, tenant_id } = req.query;
    const page = await ctx.store.listJobs({ tenant_id, status: 'failed' }, limit, cursor ?? null);
    return reply.type('application/json; charset=utf-8').send(preserialized(jobPageJson(page.data, page.next_cursor, ctx.clock.now())));
  });
}
