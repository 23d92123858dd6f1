// Configuration: read from the environment (and an optional .env) once at start, validated, frozen.
// A bad value stops the service with a message naming the variable.

import { z } from 'zod';

const int = (def: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max).default(def);
const bool = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');

export const configSchema = z.object({
  PORT: int(8080, 0, 65535),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_PATH: z.string().min(1).default('./pulsegate.db'),
  /** FULL survives power loss (an fsync per group commit); NORMAL survives a process crash only. */
  SQLITE_SYNCHRONOUS: z.enum(['FULL', 'NORMAL']).default('FULL'),
  QUEUE_CAPACITY: int(10000, 1, 1_000_000),
  WORKER_CONCURRENCY: int(20, 1, 10_000),
  SCHEDULER_POLL_INTERVAL_MS: int(5000, 10, 3_600_000),
  LEASE_MS: int(30000, 1000, 3_600_000),
  DEDUPE_WINDOW_SECONDS: int(3600, 0, 30 * 86400),
  DEDUPE_CACHE_SIZE: int(100_000, 0, 10_000_000),
  IDEMPOTENCY_TTL_SECONDS: int(86400, 1, 30 * 86400),
  MAX_PAYLOAD_BYTES: int(262144, 1, 16 * 1024 * 1024),
  SHUTDOWN_TIMEOUT_MS: int(30000, 0, 3_600_000),
  RETRY_AFTER_MAX_SECONDS: int(3600, 0, 86400),
  JOB_RETENTION_DAYS: int(30, 0, 36500),
  REQUEST_TIMEOUT_MS: int(30000, 1000, 600_000),
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
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message} (got ${JSON.stringify(present[String(i.path[0])])})`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return Object.freeze(parsed.data);
}
