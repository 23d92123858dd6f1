// The HTTP server: fastify with zod schemas (validation, types and OpenAPI from one definition).

import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, validatorCompiler } from 'fastify-type-provider-zod';
import type { ApiContext } from './context.js';
import { clientErrorHandler, errorHandler, notFoundHandler } from './errors.js';
import { registerBodyGuard } from './body-guard.js';
import { registerJsonParser } from './json-body.js';
import { forwardPages } from './pages.js';
import { batchRoutes } from './routes/batch.js';
import { bulkRoutes } from './routes/bulk.js';
import { destinationRoutes } from './routes/destinations.js';
import { dlqRoutes } from './routes/dlq.js';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import { scheduleRoutes } from './routes/schedules.js';
import { VERSION } from '../version.js';

/** The envelope around a payload (destination, headers, retry...) may add up to this much. */
const ENVELOPE_BYTES = 512 * 1024;

export interface ServerOptions {
  logger?: FastifyBaseLogger | false;
  /** Adds the authentication and tenant-isolation hooks (src/auth) before any route exists. */
  auth?: (app: FastifyInstance) => void;
}

/**
 * The API. The pages beside it (/docs, /openapi.json, /console) are answered by a documented copy
 * of it (buildDocumentedServer) built on the first request for one of them: their modules
 * (@fastify/swagger and -ui, @fastify/static, yaml, the OpenAPI examples: ~3.5 MB of heap) are not
 * loaded by a service nobody browses.
 */
export async function buildServer(ctx: ApiContext, opts: ServerOptions = {}): Promise<FastifyInstance> {
  const app = createApp(ctx, opts);
  apiRoutes(app, ctx);
  forwardPages(app, () => buildDocumentedServer(ctx));
  return app;
}

/**
 * The API with its pages: the OpenAPI document built from the route schemas (@fastify/swagger),
 * Swagger UI and the console. `npm run openapi` renders the document from it.
 */
export async function buildDocumentedServer(ctx: ApiContext, opts: ServerOptions = {}): Promise<FastifyInstance> {
  const [{ default: fastifySwagger }, { finishOpenApi }, { registerConsole }, { docsRoutes }] = await Promise.all([
    import('@fastify/swagger'),
    import('./openapi-document.js'),
    import('./console.js'),
    import('./routes/docs.js'),
  ]);
  const app = createApp(ctx, opts);

  // the OpenAPI document, served at /openapi.json and written to openapi/openapi.yaml; built on
  // the first request for it, then cached
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'PulseGate',
        version: VERSION,
        description: 'Webhook dispatch: durable jobs, retries with backoff, per-destination rate limits, a dead-letter queue.',
      },
      components: {
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            description: 'An API key (`npm run keys -- create`). Required on /v1 once any key is configured.',
          },
        },
      },
      security: [{ bearerAuth: [] }],
      tags: [
        { name: 'jobs', description: 'Create, read, cancel and retry jobs' },
        { name: 'dlq', description: 'The dead-letter queue' },
        { name: 'schedules', description: 'Recurring jobs: a cron expression in a time zone and a job template' },
        { name: 'destinations', description: 'Destinations: circuits, attempts in flight, jobs waiting' },
        { name: 'ops', description: 'Health and metrics' },
      ],
    },
    transform: jsonSchemaTransform,
    transformObject: finishOpenApi,
  });

  apiRoutes(app, ctx);
  await registerConsole(app);
  await docsRoutes(app);
  return app;
}

function createApp(ctx: ApiContext, opts: ServerOptions): FastifyInstance {
  const bodyLimit = ctx.config.MAX_PAYLOAD_BYTES + ENVELOPE_BYTES;
  const app = Fastify({
    loggerInstance: opts.logger || undefined,
    logger: opts.logger ? undefined : false,
    bodyLimit,
    requestTimeout: ctx.config.REQUEST_TIMEOUT_MS,
    connectionTimeout: ctx.config.REQUEST_TIMEOUT_MS,
    keepAliveTimeout: 72_000,
    routerOptions: { maxParamLength: 200 },
    // Node enforces requestTimeout only on its connection check, every 30 s by default, and uses
    // headersTimeout instead when that is larger: both are tightened so a trickling client is cut off
    http: {
      maxHeaderSize: 16 * 1024,
      headersTimeout: Math.min(10_000, ctx.config.REQUEST_TIMEOUT_MS),
      connectionsCheckingInterval: 1000,
    },
    // one line per request at 10k req/s is noise; jobs and attempts are logged from engine events
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    // the router's own refusals (an over-long path parameter, bad percent-encoding) and the HTTP
    // parser's answer in the same error shape as everything else
    frameworkErrors: errorHandler,
    clientErrorHandler,
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;

  app.setValidatorCompiler(validatorCompiler);
  // Responses are built by our own renderers; the schemas describe them for OpenAPI only.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);
  registerJsonParser(app);
  registerBodyGuard(app, bodyLimit);
  opts.auth?.(app);
  return app;
}

function apiRoutes(app: FastifyInstance, ctx: ApiContext): void {
  jobRoutes(app, ctx);
  batchRoutes(app, ctx);
  dlqRoutes(app, ctx);
  bulkRoutes(app, ctx);
  destinationRoutes(app, ctx);
  scheduleRoutes(app, ctx);
  healthRoutes(app, ctx);
}
