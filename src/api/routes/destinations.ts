import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { destinationId, destinationKey, type DestinationState } from '../../engine/destinations.js';
import type { ApiContext } from '../context.js';
import { ApiError } from '../errors.js';
import { errorSchema, tenantIdSchema } from '../schemas.js';

const CIRCUIT_STATES = ['closed', 'open', 'half_open'] as const;
const time = z.iso.datetime().describe('RFC 3339, UTC');

const destinationsQuerySchema = z.strictObject({
  tenant_id: tenantIdSchema.optional(),
  circuit: z.enum(CIRCUIT_STATES).optional().describe('only destinations whose circuit is in this state'),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const destinationSchema = z.object({
  id: z.string().describe('opaque; names this (tenant, origin) in POST /v1/destinations/{id}/reset'),
  tenant_id: z.string(),
  origin: z.string().describe('scheme://host[:port] of the destination URLs'),
  circuit: z.object({
    state: z.enum(CIRCUIT_STATES),
    consecutive_failures: z.number().int().describe('connect errors, timeouts and 5xx in a row'),
    probe_at: time.nullable().describe('when an open circuit lets its next probe attempt out'),
  }),
  in_flight: z.number().int(),
  waiting: z.number().int().describe('jobs waiting in memory for a slot, a token or the circuit (more may wait in the store)'),
  max_in_flight: z.number().int(),
  rate_limit: z.object({ rps: z.number(), burst: z.number().int(), max_in_flight: z.number().int().optional() }).nullable(),
  last_error: z.string().nullable(),
  last_error_at: time.nullable(),
});

const destinationListSchema = z.object({ data: z.array(destinationSchema) });
const idParamsSchema = z.strictObject({ id: z.string().min(1).max(4000) });

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function render(d: DestinationState) {
  return {
    id: destinationId(d.key),
    tenant_id: d.tenant_id,
    origin: d.origin,
    circuit: { state: d.circuit, consecutive_failures: d.consecutive_failures, probe_at: iso(d.probe_at) },
    in_flight: d.in_flight,
    waiting: d.waiting,
    max_in_flight: d.max_in_flight,
    rate_limit: d.rate_limit,
    last_error: d.last_error,
    last_error_at: iso(d.last_error_at),
  };
}

/** Open circuits first, then the busiest. */
const order = (a: DestinationState, b: DestinationState) =>
  Number(b.circuit !== 'closed') - Number(a.circuit !== 'closed') || b.in_flight + b.waiting - (a.in_flight + a.waiting) || (a.key < b.key ? -1 : 1);

/**
 * Destinations this process has delivered to recently: one per (tenant, destination origin), with
 * its circuit, its attempts in flight and its jobs waiting. A tenant key sees its own.
 */
export function destinationRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get('/v1/destinations', {
    schema: {
      operationId: 'listDestinations',
      summary: 'List destinations: circuit state, attempts in flight, jobs waiting, last error',
      tags: ['destinations'],
      querystring: destinationsQuerySchema,
      response: { 200: destinationListSchema, 400: errorSchema, 401: errorSchema, 403: errorSchema },
    },
  }, async (req) => {
    const { tenant_id, circuit, limit } = req.query;
    const all = (await ctx.engine.destinations(tenant_id)).filter((d) => circuit === undefined || d.circuit === circuit);
    return { data: all.sort(order).slice(0, limit).map(render) };
  });

  r.post('/v1/destinations/:id/reset', {
    schema: {
      operationId: 'resetDestination',
      summary: "Close a destination's circuit by hand: its waiting jobs flow again at once",
      tags: ['destinations'],
      params: idParamsSchema,
      response: { 200: destinationSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema },
    },
  }, async (req) => {
    const key = destinationKey(req.params.id);
    const state = key === null ? null : await ctx.engine.resetDestination(key);
    if (state === null) throw new ApiError(404, 'not_found', 'destination not found (none known with this id in this process)');
    return render(state);
  });
}
