// Authentication and tenant isolation as two fastify hooks, so the routes stay unaware of either.
//
// onRequest (before the body is read): every route but /healthz, /readyz, /metrics and /openapi.json needs
// `Authorization: Bearer <key>` once keys are required. None, unknown or revoked → 401 unauthorized
// with WWW-Authenticate. Answering before the body is parsed means a caller without a key cannot make
// us parse anything.
//
// preHandler (after validation, before the handler): a tenant key may only touch its own tenant.
//   POST /v1/jobs                  body.tenant_id must be the key's tenant, else 403 forbidden
//   POST /v1/jobs/batch            every item's tenant_id must be the key's tenant, else 403 for all
//   GET  /v1/jobs, GET /v1/dlq     query tenant_id must be the key's tenant (403), or is set to it
//   POST /v1/dlq/retry, POST /v1/jobs/cancel
//                                  body tenant_id must be the key's tenant (403), or is set to it
//   /v1/jobs/:id[/attempts|/cancel|/retry]
//                                  a job of another tenant is answered 404 not_found, exactly as a
//                                  missing one: its existence is not revealed
//   POST /v1/schedules             body.job.tenant_id must be the key's tenant, else 403 forbidden
//   GET  /v1/schedules             as GET /v1/jobs
//   /v1/schedules/:id[/pause|/resume], DELETE /v1/schedules/:id
//                                  another tenant's schedule is answered 404, as a missing one
//   any other route                403: a route these rules do not know is admin-only until they do
// An admin key passes every rule.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../api/errors.js';
import { destinationKey } from '../engine/destinations.js';
import type { Store } from '../store/store.js';
import type { Authenticator } from './authenticator.js';
import type { Principal } from './keys.js';

// the console's files hold no data: the page asks for a key and sends it to /v1 itself; every
// route under /docs (Swagger UI's page and files) is open too
export const OPEN_ROUTES: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics', '/openapi.json', '/console', '/console/', '/console/*']);
const REALM = 'Bearer realm="pulsegate"';
const ANONYMOUS: Principal = { kind: 'admin', key_id: 'none' };

type TenantRule = 'body' | 'batch' | 'query' | 'job' | 'filter' | 'destination' | 'schedule-body' | 'schedule';
const RULES: ReadonlyMap<string, TenantRule> = new Map([
  ['POST /v1/jobs', 'body'],
  ['POST /v1/jobs/batch', 'batch'],
  ['GET /v1/jobs', 'query'],
  ['GET /v1/dlq', 'query'],
  ['GET /v1/jobs/:id', 'job'],
  ['GET /v1/jobs/:id/attempts', 'job'],
  ['POST /v1/jobs/:id/cancel', 'job'],
  ['POST /v1/jobs/:id/retry', 'job'],
  ['POST /v1/dlq/retry', 'filter'],
  ['POST /v1/jobs/cancel', 'filter'],
  ['GET /v1/destinations', 'query'],
  ['POST /v1/destinations/:id/reset', 'destination'],
  ['POST /v1/schedules', 'schedule-body'],
  ['GET /v1/schedules', 'query'],
  ['GET /v1/schedules/:id', 'schedule'],
  ['POST /v1/schedules/:id/pause', 'schedule'],
  ['POST /v1/schedules/:id/resume', 'schedule'],
  ['DELETE /v1/schedules/:id', 'schedule'],
]);

export interface AuthHooksOptions {
  authenticator: Authenticator;
  store: Pick<Store, 'getJob' | 'getSchedule'>;
}

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), or null. */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return m?.[1] ?? null;
}

function unauthorized(reply: FastifyReply, presented: boolean): never {
  // RFC 6750: no error attribute when no credentials came, invalid_token when they were wrong.
  reply.header('www-authenticate', presented ? `${REALM}, error="invalid_token"` : REALM);
  throw new ApiError(401, 'unauthorized', presented ? 'the API key is not valid' : 'send an API key: Authorization: Bearer <key>');
}

export function registerAuthHooks(app: FastifyInstance, opts: AuthHooksOptions): void {
  const { authenticator, store } = opts;
  const principals = new WeakMap<FastifyRequest, Principal>();

  // A /v1 route these rules do not list is refused to tenant keys; say so when it is added, so a new
  // route does not silently become admin-only.
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/v1')) return;
    // HEAD routes fastify adds for each GET are judged as that GET (and warned about once, there)
    for (const method of [route.method].flat().filter((m) => m !== 'HEAD')) {
      if (!RULES.has(`${method} ${route.url}`)) {
        app.log.warn({ method, url: route.url }, 'route has no tenant rule in src/auth/hooks.ts: tenant keys get 403 on it');
      }
    }
  });

  app.addHook('onRequest', async (req, reply) => {
    const route = req.routeOptions.url;
    if (route !== undefined && (OPEN_ROUTES.has(route) || route.startsWith('/docs'))) return;
    if (!(await authenticator.required())) {
      principals.set(req, ANONYMOUS);
      return;
    }
    const header = req.headers.authorization;
    const token = bearerToken(header);
    if (token === null) unauthorized(reply, header !== undefined);
    const principal = await authenticator.authenticate(token);
    if (principal === null) unauthorized(reply, true);
    principals.set(req, principal);
  });

  app.addHook('preHandler', async (req) => {
    const principal = principals.get(req);
    // no route (the 404 handler): nothing to isolate
    if (principal === undefined || principal.kind === 'admin' || req.routeOptions.url === undefined) return;
    const tenant = principal.tenant_id;
    // fastify answers HEAD with the GET route
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const rule = RULES.get(`${method} ${req.routeOptions.url ?? ''}`);
    switch (rule) {
      case 'body': {
        const body = req.body as { tenant_id?: unknown } | undefined;
        if (body?.tenant_id !== tenant) throw new ApiError(403, 'forbidden', `this API key may only create jobs for tenant ${tenant}`);
        return;
      }
      case 'batch': {
        // every item must name the key's tenant; an item that is not an object is the route's to refuse
        const jobs = (req.body as { jobs?: unknown[] } | undefined)?.jobs ?? [];
        const foreign = jobs.flatMap((j, i) => (j && typeof j === 'object' && (j as { tenant_id?: unknown }).tenant_id !== tenant ? [i] : []));
        if (foreign.length > 0) {
          throw new ApiError(403, 'forbidden', `this API key may only create jobs for tenant ${tenant}`, { indexes: foreign.slice(0, 100) });
        }
        return;
      }
      case 'query': {
        const query = req.query as { tenant_id?: string };
        if (query.tenant_id === undefined) query.tenant_id = tenant;
        else if (query.tenant_id !== tenant) throw new ApiError(403, 'forbidden', `this API key may only list jobs of tenant ${tenant}`);
        return;
      }
      case 'filter': {
        const body = req.body as { tenant_id?: string };
        if (body.tenant_id === undefined) body.tenant_id = tenant;
        else if (body.tenant_id !== tenant) throw new ApiError(403, 'forbidden', `this API key may only act on jobs of tenant ${tenant}`);
        return;
      }
      case 'job': {
        const { id } = req.params as { id: string };
        const job = await store.getJob(id);
        if (job && job.tenant_id !== tenant) throw new ApiError(404, 'not_found', 'job not found');
        return;
      }
      case 'schedule-body': {
        const job = (req.body as { job?: { tenant_id?: unknown } } | undefined)?.job;
        if (job?.tenant_id !== tenant) throw new ApiError(403, 'forbidden', `this API key may only create schedules for tenant ${tenant}`);
        return;
      }
      case 'schedule': {
        const { id } = req.params as { id: string };
        const schedule = await store.getSchedule(id);
        if (schedule && schedule.tenant_id !== tenant) throw new ApiError(404, 'not_found', 'schedule not found');
        return;
      }
      case 'destination': {
        // the id carries its tenant (see engine/destinations.ts): another tenant's reads as unknown
        const key = destinationKey((req.params as { id: string }).id);
        if (key === null || !key.startsWith(`${tenant} `)) throw new ApiError(404, 'not_found', 'destination not found');
        return;
      }
      case undefined:
        throw new ApiError(403, 'forbidden', 'this route needs an admin API key');
    }
  });
}
