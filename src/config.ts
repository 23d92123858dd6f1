// Configuration: read from the environment (and an optional .env) once at start, validated, frozen.
// A bad value stops the service with a message naming the variable.

import { z } from 'zod';
import { ApiKeysSyntaxError, parseEnvKeys, type EnvKey } from './auth/keys.js';
import { parseSecret, tenantSecretExpiries, type SigningSecret } from './delivery/signing.js';

const int = (def: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max).default(def);
const bool = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** Variables whose values never appear in an error message. */
const SECRET_VARIABLES = new Set(['DATABASE_URL', 'API_KEYS', 'SIGNING_SECRET', 'SIGNING_SECRET_PREVIOUS', 'TENANT_SIGNING_SECRETS']);

const signingSecret = z
  .string()
  .optional()
  .superRefine((v, ctx) => {
    if (v === undefined) return;
    try {
      parseSecret(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

/**
 * TENANT_SIGNING_SECRETS: `tenant=whsec_…[@expires]` entries separated by `;`. Errors name the entry
 * by its position only: a mistyped entry (`acme:whsec_…`) may put the secret where the tenant goes.
 */
function parseTenantSecrets(text: string, ctx: z.RefinementCtx): SigningSecret[] {
  const out: SigningSecret[] = [];
  text
    .split(';')
    .map((e) => e.trim())
    .filter(Boolean)
    .forEach((entry, i) => {
      const n = i + 1;
      const eq = entry.indexOf('=');
      const tenant = eq > 0 ? entry.slice(0, eq).trim() : '';
      if (!/^[A-Za-z0-9._:-]{1,128}$/.test(tenant) || tenant.includes('whsec_')) {
        ctx.addIssue({ code: 'custom', message: `entry ${n} is not <tenant>=whsec_…[@<RFC 3339 expiry>]` });
        return;
      }
      const rest = entry.slice(eq + 1).trim();
      const at = rest.indexOf('@');
      const secret = at < 0 ? rest : rest.slice(0, at);
      let expires_at: number | undefined;
      if (at >= 0) {
        const when = rest.slice(at + 1);
        if (!z.iso.datetime({ offset: true }).safeParse(when).success) {
          ctx.addIssue({ code: 'custom', message: `entry ${n}: the expiry after @ must be an RFC 3339 time, e.g. 2026-07-01T00:00:00Z` });
          return;
        }
        expires_at = Date.parse(when);
      }
      try {
        parseSecret(secret);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `entry ${n}: ${(err as Error).message}` });
        return;
      }
      out.push(expires_at === undefined ? { tenant_id: tenant, secret } : { tenant_id: tenant, secret, expires_at });
    });
  return out;
}

const otlpUrl = z
  .string()
  .regex(/^https?:\/\/./, 'must be an http:// or https:// URL')
  .optional();

export const configSchema = z.object({
  PORT: int(8080, 0, 65535),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_PATH: z.string().min(1).default('./pulsegate.db'),
  /** postgres://… or postgresql://…: run on PostgreSQL (several instances may share it) instead of SQLite at DATABASE_PATH. */
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\/./, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  /** PostgreSQL connections each instance opens at most; the server sees instances × this. */
  PG_POOL_MAX: int(10, 1, 1000),
  /** The server cancels a statement running longer than this; 0 means no limit. */
  PG_STATEMENT_TIMEOUT_MS: int(5000, 0, 3_600_000),
  /** Getting a connection from the pool fails (503 store_unavailable) after this long. */
  PG_CONNECT_TIMEOUT_MS: int(10_000, 100, 600_000),
  /** Wake the other instances with LISTEN/NOTIFY when work they could take is written (one more connection each). */
  PG_NOTIFY: bool(true),
  /** FULL survives power loss (an fsync per group commit); NORMAL survives a process crash only. */
  SQLITE_SYNCHRONOUS: z.enum(['FULL', 'NORMAL']).default('FULL'),
  /** Run the SQLite connection on a worker thread, off the event loop that serves HTTP. */
  SQLITE_THREAD: bool(false),
  /** SQLite's page cache for the connection, in MB (part of the process's RSS). */
  SQLITE_CACHE_MB: int(4, 1, 4096),
  /** Run the engine (claims, deliveries, signing, results) on a worker thread of its own, with its own connection. */
  ENGINE_THREAD: bool(true),
  QUEUE_CAPACITY: int(10000, 1, 1_000_000),
  /**
   * Attempts in flight at once, all destinations together. Sized by Little's law for an I/O-bound
   * dispatcher: rate × how long a slow receiver holds a slot (see README, "Sizing concurrency").
   */
  WORKER_CONCURRENCY: int(512, 1, 10_000),
  /** Attempts in flight at most per (tenant, destination origin); a job's rate_limit.max_in_flight overrides it. */
  DESTINATION_MAX_IN_FLIGHT: int(64, 1, 10_000),
  /** Attempts in flight at most per tenant, all its destinations together: one tenant never holds the whole pool. */
  TENANT_MAX_IN_FLIGHT: int(256, 1, 10_000),
  /** Consecutive "down" results (connect error, timeout, 5xx) that open a destination's circuit. */
  CIRCUIT_FAILURE_THRESHOLD: int(5, 1, 1000),
  /** How long an opened circuit waits before its first probe. */
  CIRCUIT_COOLDOWN_MS: int(5000, 10, 3_600_000),
  /** The cool-down doubles after each failed probe, up to this. */
  CIRCUIT_COOLDOWN_MAX_MS: int(300_000, 10, 86_400_000),
  SCHEDULER_POLL_INTERVAL_MS: int(5000, 10, 3_600_000),
  LEASE_MS: int(30000, 1000, 3_600_000),
  DEDUPE_WINDOW_SECONDS: int(3600, 0, 30 * 86400),
  // ~250 bytes an entry; the durable index answers beyond it, so it only needs the hot duplicates
  DEDUPE_CACHE_SIZE: int(10_000, 0, 10_000_000),
  IDEMPOTENCY_TTL_SECONDS: int(86400, 1, 30 * 86400),
  MAX_PAYLOAD_BYTES: int(262144, 1, 16 * 1024 * 1024),
  SHUTDOWN_TIMEOUT_MS: int(30000, 0, 3_600_000),
  RETRY_AFTER_MAX_SECONDS: int(3600, 0, 86400),
  JOB_RETENTION_DAYS: int(30, 0, 36500),
  REQUEST_TIMEOUT_MS: int(30000, 1000, 600_000),
  /** Adds a `tenant` label to the job and attempt counters; only where the number of tenants is bounded. */
  METRICS_TENANT_LABELS: bool(false),
  /** Adds per-destination in-flight and waiting gauges (tenant and origin labels), for the 20 busiest destinations only. */
  METRICS_DESTINATION_LABELS: bool(false),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ALLOW_PRIVATE_DESTINATIONS: bool(false),
  /** Comma-separated CIDRs that destinations may use even though they are private. */
  ALLOWED_DESTINATION_CIDRS: z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    ),

  // ── schedules ──
  /** Run the schedule ticker in this instance (any number may: each tick is created once). */
  SCHEDULE_TICKER: bool(true),
  /** Missed ticks a schedule that does not say catches up at most (its catch_up_limit). */
  SCHEDULE_CATCH_UP_LIMIT: int(1, 1, 1000),
  /** A tick older than this when the ticker gets to it was missed (the service was down): its schedule's missed_ticks policy applies. */
  SCHEDULE_MISSED_AFTER_MS: int(60_000, 0, 86_400_000),

  // ── authentication ──
  /** `<tenant>:<key>` entries separated by commas; `*:<key>` is an admin key. Held as hashes only. */
  API_KEYS: z
    .string()
    .default('')
    .transform((s, ctx): EnvKey[] => {
      try {
        return parseEnvKeys(s);
      } catch (err) {
        if (!(err instanceof ApiKeysSyntaxError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.message });
        return z.NEVER;
      }
    }),
  /** No authentication at all (behind a gateway that authenticates). Allows a non-loopback HOST without keys. */
  AUTH_DISABLED: bool(false),
  /** How long an API key lookup is cached; a revoked key keeps working at most this long. */
  API_KEY_CACHE_TTL_MS: int(30_000, 0, 600_000),

  // ── signing (Standard Webhooks) ──
  SIGNING_SECRET: signingSecret,
  /** The secret being rotated out: deliveries carry a signature with it too until the expiry. */
  SIGNING_SECRET_PREVIOUS: signingSecret,
  SIGNING_SECRET_PREVIOUS_EXPIRES_AT: z.iso
    .datetime({ offset: true, error: 'must be an RFC 3339 time, e.g. 2026-07-01T00:00:00Z' })
    .transform((s) => Date.parse(s))
    .optional(),
  TENANT_SIGNING_SECRETS: z.string().default('').transform(parseTenantSecrets),

  // ── tracing (OpenTelemetry; the standard variables) ──
  /** Base URL of an OTLP/HTTP receiver: spans go to <it>/v1/traces. Unset: no spans, no SDK loaded. */
  OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl,
  /** The full traces URL, used as given; wins over OTEL_EXPORTER_OTLP_ENDPOINT. */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otlpUrl,
  OTEL_SERVICE_NAME: z.string().min(1).max(255).default('pulsegate'),
  /** true: no spans even with an endpoint (traceparent is still propagated). */
  OTEL_SDK_DISABLED: bool(false),
});

export type Config = Readonly<z.infer<typeof configSchema>>;

export class ConfigError extends Error {
  readonly code = 'config_invalid';
}

/** Parses an environment into a frozen Config; throws ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const present: Record<string, string> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== '') present[key] = v;
  }
  const parsed = configSchema.safeParse(present);
  const lines = parsed.success
    ? crossChecks(parsed.data)
    : parsed.error.issues.map((i) => {
        const name = String(i.path[0]);
        const got = SECRET_VARIABLES.has(name) ? 'value hidden' : `got ${JSON.stringify(present[name])}`;
        return `${i.path.join('.')}: ${i.message} (${got})`;
      });
  if (!parsed.success || lines.length > 0) throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  return Object.freeze(parsed.data);
}

/** Rules between variables, each line naming the variables involved. */
function crossChecks(c: z.infer<typeof configSchema>): string[] {
  const lines: string[] = [];
  if (c.SIGNING_SECRET_PREVIOUS !== undefined) {
    if (c.SIGNING_SECRET === undefined) lines.push('SIGNING_SECRET_PREVIOUS: set SIGNING_SECRET (the new secret) too');
    if (c.SIGNING_SECRET_PREVIOUS_EXPIRES_AT === undefined) {
      lines.push('SIGNING_SECRET_PREVIOUS_EXPIRES_AT: required with SIGNING_SECRET_PREVIOUS (when the old secret stops signing)');
    }
    if (c.SIGNING_SECRET_PREVIOUS === c.SIGNING_SECRET) lines.push('SIGNING_SECRET_PREVIOUS: is the same as SIGNING_SECRET');
  } else if (c.SIGNING_SECRET_PREVIOUS_EXPIRES_AT !== undefined) {
    lines.push('SIGNING_SECRET_PREVIOUS_EXPIRES_AT: set only together with SIGNING_SECRET_PREVIOUS');
  }
  const expiring = [...tenantSecretExpiries(c.TENANT_SIGNING_SECRETS).keys()];
  if (expiring.length > 0 && c.SIGNING_SECRET === undefined) {
    lines.push(
      `TENANT_SIGNING_SECRETS: every secret of tenant ${expiring.slice(0, 5).join(', ')} has an expiry; ` +
        'give it a secret without one, or set SIGNING_SECRET for it to fall back on (deliveries are never sent unsigned)',
    );
  }
  if (c.CIRCUIT_COOLDOWN_MAX_MS < c.CIRCUIT_COOLDOWN_MS) lines.push('CIRCUIT_COOLDOWN_MAX_MS: must be >= CIRCUIT_COOLDOWN_MS');
  if (c.AUTH_DISABLED && c.API_KEYS.length > 0) lines.push('AUTH_DISABLED: true contradicts API_KEYS; unset one of them');
  return lines;
}

/**
 * Config rules that depend on the time of start: a tenant whose own secrets have all expired already
 * is a mistake to refuse, not a fallback to run on. Returns the lines to refuse with (empty when fine).
 */
export function startChecks(c: Config, now: number): string[] {
  const lines: string[] = [];
  for (const [tenant, last] of tenantSecretExpiries(c.TENANT_SIGNING_SECRETS)) {
    if (last <= now) {
      lines.push(
        `TENANT_SIGNING_SECRETS: every secret of tenant ${tenant} expired (the last at ${new Date(last).toISOString()}); add a current secret for it or remove its entries`,
      );
    }
  }
  return lines;
}

/** Every signing secret the configuration names: the global ones (current first), then the tenants'. */
export function signingSecrets(c: Config): SigningSecret[] {
  const out: SigningSecret[] = [];
  if (c.SIGNING_SECRET !== undefined) out.push({ secret: c.SIGNING_SECRET });
  if (c.SIGNING_SECRET_PREVIOUS !== undefined) out.push({ secret: c.SIGNING_SECRET_PREVIOUS, expires_at: c.SIGNING_SECRET_PREVIOUS_EXPIRES_AT });
  return [...out, ...c.TENANT_SIGNING_SECRETS];
}
