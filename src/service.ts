// Assembles a running PulseGate from a Config: store, engine, intake, HTTP server. main.ts adds
// signals; tests start services in-process through here with a fake clock or a custom resolver.

import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { systemClock, type Clock } from './clock.js';
import { ConfigError, signingSecrets, startChecks, type Config } from './config.js';
import type { Lifecycle } from './api/context.js';
import { buildServer } from './api/server.js';
import { createAuthenticator } from './auth/authenticator.js';
import { registerAuthHooks } from './auth/hooks.js';
import { isLoopbackHost } from './auth/listen-policy.js';
import { EXPIRY_WARNING_MS, tenantSecretExpiries } from './delivery/signing.js';
import { createDestinationGuard } from './delivery/ssrf.js';
import type { EngineHandle } from './engine/handle.js';
import { EngineThread } from './engine/thread/engine-thread.js';
import { Housekeeper } from './engine/housekeeper.js';
import { Intake } from './engine/intake.js';
import { engineOwner } from './engine/owner.js';
import { EventBus } from './observability/events.js';
import { attachEventLogger, createLogger } from './observability/logger.js';
import { createMetrics } from './observability/metrics.js';
import { createTracing } from './observability/tracing.js';
import { guardStore } from './store/faults.js';
import { databaseLabel, openConfiguredStore } from './store/open.js';
import { WriteLock } from './store/sqlite/write-lock.js';
import type { PostgresStore } from './store/postgres/postgres-store.js';
import type { Store } from './store/store.js';
import { Ticker } from './schedules/ticker.js';
import { tickJobCreator } from './schedules/tick-job.js';

export interface ServiceOverrides {
  clock?: Clock;
  store?: Store;
  logger?: Logger;
  random?: () => number;
  /** dns.lookup-compatible resolver for deliveries (tests point names at loopback with it). */
  lookup?: Parameters<typeof createDestinationGuard>[0]['lookup'];
  owner?: string;
}

export interface Service {
  app: FastifyInstance;
  url: string;
  store: Store;
  engine: EngineHandle;
  events: EventBus;
  lifecycle: Lifecycle;
  logger: Logger;
  /** The schedule ticker; null with SCHEDULE_TICKER=false. */
  ticker: Ticker | null;
  /** Graceful stop: refuse new jobs, finish or release in-flight work, close the store. */
  stop(timeoutMs?: number): Promise<void>;
}

export async function startService(config: Config, o: ServiceOverrides = {}): Promise<Service> {
  const clock = o.clock ?? systemClock;
  const logger = o.logger ?? createLogger(config.LOG_LEVEL);
  const lifecycle: Lifecycle = { phase: 'starting' };
  const events = new EventBus();

  // store faults (database down, disk full) come out typed as StoreUnavailableError: 503 store_unavailable
  const onThread = engineOnThread(config, o);
  const writeLock = new WriteLock();
  const store = guardStore(o.store ?? (await openConfiguredStore(config, onThread ? { writeLock } : {})));
  try {
    await store.migrate();
  } catch (err) {
    if (!o.store) await store.close();
    throw err;
  }

  const authenticator = createAuthenticator({
    store,
    clock,
    envKeys: config.API_KEYS,
    cacheTtlMs: config.API_KEY_CACHE_TTL_MS,
    disabled: config.AUTH_DISABLED,
  });
  try {
    await checkListenPolicy(config, await authenticator.required(), logger);
  } catch (err) {
    if (!o.store) await store.close();
    throw err;
  }

  const guard = createDestinationGuard({
    allowPrivate: config.ALLOW_PRIVATE_DESTINATIONS,
    allowedCidrs: config.ALLOWED_DESTINATION_CIDRS,
    lookup: o.lookup,
  });
  const secrets = signingSecrets(config);
  if (secrets.length === 0) logger.warn('no SIGNING_SECRET: deliveries are not signed, receivers cannot tell them from forgeries');
  const refused = startChecks(config, clock.now());
  if (refused.length > 0) {
    if (!o.store) await store.close();
    throw new ConfigError(`invalid configuration:\n  ${refused.join('\n  ')}`);
  }
  // the OpenTelemetry SDK is imported only when an OTLP endpoint is configured; the engine thread
  // makes its own for the attempt spans (thread/worker.ts), this one makes the create spans
  const tracing = await createTracing(config, {
    lastAttemptEnd: async (jobId) => (await store.listAttempts(jobId)).at(-1)?.finished_at ?? null,
    onError: (err) => events.emit({ type: 'store.error', op: 'trace', error: err.message }),
  });
  if (tracing.exporting) logger.info({ service_name: config.OTEL_SERVICE_NAME }, 'tracing: spans exported over OTLP/HTTP');

  let engine: EngineHandle;
  let closeEngine: () => Promise<void>;
  let relaying = () => false;
  if (onThread) {
    // the engine's own connection to the same database, its own HTTP client, on the other core
    const writeLog = (lines: string) => void (logger as unknown as Record<symbol, { write(s: string): void }>)[pino.symbols.streamSym]?.write(lines);
    const thread = await EngineThread.open({ config, owner: o.owner ?? engineOwner(), events, writeLog, writeLock }).catch(async (err: unknown) => {
      await store.close();
      throw err;
    });
    engine = thread;
    relaying = () => thread.relaying;
    closeEngine = () => thread.close();
  } else {
    // loaded only here: on the engine thread's side the main thread never loads the engine, its
    // dispatcher and undici's Agent (worker.ts does)
    const { createEngine } = await import('./engine/setup.js');
    const parts = createEngine(config, { store, clock, events, lookup: o.lookup, owner: o.owner, random: o.random, secrets, tracing });
    engine = parts.engine;
    closeEngine = () => parts.dispatcher.close();
  }
  const intake = new Intake({
    store,
    clock,
    events,
    onCreated: (runAt) => engine.notifyDue(runAt),
    claimer: engine,
    dedupeCacheSize: config.DEDUPE_CACHE_SIZE,
  });
  const metrics = createMetrics({
    events,
    engineStats: () => engine.stats(),
    store,
    clock,
    tenantLabels: config.METRICS_TENANT_LABELS,
    signingExpiries: tenantSecretExpiries(secrets),
    destinations: () => engine.destinations(),
    destinationLabels: config.METRICS_DESTINATION_LABELS,
  });
  attachEventLogger(onThread ? unlessRelayed(events, relaying) : events, logger);
  // warned here at start too, not only when a delivery is signed, so a quiet tenant is not missed
  for (const [tenant_id, expiresAt] of tenantSecretExpiries(secrets)) {
    if (expiresAt - clock.now() <= EXPIRY_WARNING_MS) events.emit({ type: 'signing.expiring', tenant_id, expires_at: expiresAt });
  }
  const ticker = config.SCHEDULE_TICKER
    ? new Ticker({
        store,
        clock,
        events,
        owner: engine.owner,
        leaseMs: config.LEASE_MS,
        missedAfterMs: config.SCHEDULE_MISSED_AFTER_MS,
        // PostgreSQL: other instances create schedules this one is not told of
        pollMs: store.driver === 'postgres' ? config.SCHEDULER_POLL_INTERVAL_MS : null,
        // as for jobs (recoverAllOnStart): a schedule a killed process held is taken over at once
        takeOverAtStart: store.driver === 'sqlite',
        createJob: tickJobCreator({ config, destinations: guard, intake }),
      })
    : null;
  const housekeeper = new Housekeeper(store, clock, events, config.JOB_RETENTION_DAYS * 86_400_000);

  const app = await buildServer(
    { config, clock, events, store, intake, engine, lifecycle, metrics, destinations: guard, tracing, schedules: ticker ?? undefined },
    { logger, auth: (server) => registerAuthHooks(server, { authenticator, store }) },
  );
  await app.listen({ port: config.PORT, host: config.HOST });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.PORT;
  const host = config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST;
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;

  await engine.start();
  // PostgreSQL: work another instance writes wakes this engine at once, not at its next poll
  const listener =
    listensForDue(store)
      ? await store.listenDue(
          (dueAt) => engine.notifyDue(dueAt),
          (err) => events.emit({ type: 'store.error', op: 'listen', error: err.message }),
        )
      : null;
  housekeeper.start();
  lifecycle.phase = 'ready';
  ticker?.start();
  logger.info({ url, database: databaseLabel(config), driver: store.driver, owner: engine.owner }, 'pulsegate ready');

  let stopping: Promise<void> | null = null;
  async function stop(timeoutMs = config.SHUTDOWN_TIMEOUT_MS): Promise<void> {
    stopping ??= (async () => {
      lifecycle.phase = 'draining';
      logger.info({ timeout_ms: timeoutMs }, 'draining: new jobs refused, in-flight attempts finishing');
      housekeeper.stop();
      await ticker?.stop();
      // let creations already accepted reach their commit and their answer
      for (let i = 0; i < 200 && intake.busy; i++) await new Promise((r) => setTimeout(r, 5));
      const drained = await engine.drain(timeoutMs);
      logger.info(drained, 'drained');
      await app.close();
      await closeEngine();
      await tracing.shutdown().catch((err: Error) => logger.warn({ error: err.message }, 'tracing: spans not exported at shutdown'));
      await listener?.stop();
      await store.close();
      lifecycle.phase = 'stopped';
      logger.info('stopped');
    })();
    return stopping;
  }

  return { app, url, store, engine, events, lifecycle, logger, ticker, stop };
}

/**
 * Secure by default: without any API key the API is open to whoever can reach it, so it may only
 * listen on loopback. A non-loopback HOST needs keys, or AUTH_DISABLED=true said out loud.
 */
async function checkListenPolicy(config: Config, keysRequired: boolean, logger: Logger): Promise<void> {
  if (config.AUTH_DISABLED) {
    logger.warn({ host: config.HOST }, 'AUTH_DISABLED=true: no API key is checked and every caller acts as admin');
    return;
  }
  if (keysRequired) return;
  if (!isLoopbackHost(config.HOST)) {
    throw new ConfigError(
      `HOST=${config.HOST} is not a loopback address and no API key is configured, so anyone who can reach it could use the API. ` +
        'Set API_KEYS, create a key with `npm run keys -- create --tenant <id>` (or --admin), ' +
        'listen on loopback (HOST=127.0.0.1), or set AUTH_DISABLED=true if a gateway in front authenticates.',
    );
  }
  logger.warn(
    { host: config.HOST },
    'no API keys configured: the API is unauthenticated and listens on loopback only (create one with `npm run keys -- create`)',
  );
}

/** The events not relayed from the engine thread, which arrive already logged (see EngineThread). */
function unlessRelayed(events: EventBus, relaying: () => boolean): EventBus {
  const own = new EventBus();
  events.on((e) => {
    if (!relaying()) own.emit(e);
  });
  return own;
}

/**
 * The engine runs on its own thread unless ENGINE_THREAD=false, or a test hands the service what
 * cannot cross a thread (a fake clock, a store object, a resolver, a random source), or the
 * database is in memory (a second connection would see another database).
 */
function engineOnThread(config: Config, o: ServiceOverrides): boolean {
  const inMemory = config.DATABASE_URL === undefined && (config.DATABASE_PATH === ':memory:' || config.DATABASE_PATH === '');
  return config.ENGINE_THREAD && !o.clock && !o.store && !o.lookup && !o.random && !inMemory;
}

/** The PostgreSQL driver, whose instances wake each other (a type guard: `pg` is not loaded to check). */
function listensForDue(store: Store): store is PostgresStore {
  return store.driver === 'postgres' && 'listenDue' in store && typeof store.listenDue === 'function';
}
