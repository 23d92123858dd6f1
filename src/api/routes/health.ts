import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { storeHealth } from '../../store/faults.js';
import type { ApiContext } from '../context.js';

const healthSchema = z.object({ status: z.string(), checks: z.record(z.string(), z.string()).optional() });

export function healthRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get('/healthz', {
    schema: { operationId: 'getHealth', summary: 'Liveness: 200 while the process lives', tags: ['ops'], security: [], response: { 200: healthSchema } },
  }, async () => ({ status: 'ok' }));

  r.get('/readyz', {
    schema: {
      operationId: 'getReadiness',
      summary: 'Readiness: 200 when the store answers and the engine runs; 503 while starting, draining or failing',
      tags: ['ops'],
      security: [],
      response: { 200: healthSchema, 503: healthSchema },
    },
  }, async (_req, reply) => {
    const checks: Record<string, string> = { phase: ctx.lifecycle.phase };
    let ok = ctx.lifecycle.phase === 'ready';
    checks.engine = ctx.engine.isRunning ? 'running' : 'stopped';
    if (!ctx.engine.isRunning) ok = false;
    const health = storeHealth(ctx.store);
    try {
      await ctx.store.ping();
      if (health?.failure) {
        // the last write failed as store-unavailable: ready again only once a write would succeed
        if (ctx.store.probeWrite) await ctx.store.probeWrite();
        health.recovered();
      }
      checks.store = 'ok';
    } catch (err) {
      checks.store = `failing: ${(err as Error).message}`;
      ok = false;
    }
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not_ready', checks });
  });

  r.get('/metrics', {
    schema: { operationId: 'getMetrics', summary: 'Prometheus metrics (text exposition format)', tags: ['ops'], security: [] },
  }, async (_req, reply) => {
    const text = await ctx.metrics.render();
    return reply.type(ctx.metrics.contentType).send(text);
  });
}
