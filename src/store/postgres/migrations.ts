// Versioned schema migrations for the PostgreSQL driver. Append new versions; never edit an applied one.
// All pending versions run in ONE transaction that first takes a transaction-level advisory lock, so
// several instances starting at once apply each version exactly once: the others wait on the lock,
// then find the ledger (schema_migrations) up to date. DDL is transactional in PostgreSQL, so a
// failing version leaves the database as it was, ledger included.
//
// Times are epoch milliseconds in BIGINT columns; `now` always comes from the caller, never from
// the database clock. Ids and keys compare byte-wise (COLLATE "C"), as the SQLite driver's do.

import type pg from 'pg';
import { transaction } from './pool.js';

export interface PgMigration {
  version: number;
  name: string;
  sql: string;
}

/** The advisory lock key that serializes migrations ('pulsegate' as a 64-bit number, any fixed value). */
export const MIGRATION_LOCK_KEY = 0x7075_6c73_6567_61n;

export const PG_MIGRATIONS: readonly PgMigration[] = [
  {
    version: 1,
    name: 'jobs, attempts, idempotency and dedupe keys',
    sql: `
      CREATE TABLE jobs (
        id                  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        tenant_id           TEXT COLLATE "C" NOT NULL,
        type                TEXT COLLATE "C" NOT NULL,
        status              TEXT    NOT NULL CHECK (status IN
                              ('scheduled','queued','running','retrying','success','failed','cancelled')),
        payload_json        TEXT    NOT NULL,
        dest_url            TEXT    NOT NULL,
        dest_method         TEXT    NOT NULL CHECK (dest_method IN ('POST','PUT','PATCH','DELETE')),
        dest_timeout_ms     INTEGER NOT NULL,
        dest_headers_json   TEXT    NOT NULL,
        retry_max_attempts  INTEGER NOT NULL,
        retry_base_delay_ms BIGINT  NOT NULL,
        retry_max_delay_ms  BIGINT  NOT NULL,
        rate_limit_rps      DOUBLE PRECISION,
        rate_limit_burst    INTEGER,
        run_at              BIGINT  NOT NULL,
        due_at              BIGINT  NOT NULL,
        attempts            INTEGER NOT NULL DEFAULT 0,
        next_attempt_at     BIGINT,
        last_error          TEXT,
        last_status_code    INTEGER,
        idempotency_key     TEXT,
        dedupe_key          TEXT,
        lease_owner         TEXT COLLATE "C",
        lease_expires_at    BIGINT,
        created_at          BIGINT  NOT NULL,
        updated_at          BIGINT  NOT NULL,
        completed_at        BIGINT
      );

      -- claimDue and nextDueAt: waiting jobs no one holds, oldest due first.
      CREATE INDEX jobs_claim ON jobs (due_at, id)
        WHERE status IN ('scheduled','queued','retrying') AND lease_owner IS NULL;
      -- promoteDue: only scheduled jobs, so a backlog of queued ones is never scanned.
      CREATE INDEX jobs_scheduled ON jobs (run_at) WHERE status = 'scheduled';
      -- listJobs, newest first, per filter combination.
      CREATE INDEX jobs_tenant ON jobs (tenant_id, id);
      CREATE INDEX jobs_status ON jobs (status, id);
      CREATE INDEX jobs_tenant_status ON jobs (tenant_id, status, id);
      CREATE INDEX jobs_type ON jobs (type, id);
      -- renewLeases seeks by owner; recoverLeases scans it (held jobs only: a few thousand per
      -- instance). One index, not two: every claim and every result changes lease_owner.
      CREATE INDEX jobs_held ON jobs (lease_owner, lease_expires_at) WHERE lease_owner IS NOT NULL;
      -- pruneTerminal.
      CREATE INDEX jobs_prune ON jobs (completed_at) WHERE status IN ('success','failed','cancelled');

      CREATE TABLE attempts (
        id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        job_id        TEXT COLLATE "C" NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        attempt       INTEGER NOT NULL,
        started_at    BIGINT  NOT NULL,
        finished_at   BIGINT  NOT NULL,
        duration_ms   BIGINT  NOT NULL,
        outcome       TEXT    NOT NULL CHECK (outcome IN ('success','retryable_error','permanent_error')),
        error_kind    TEXT,
        status_code   INTEGER,
        error         TEXT,
        response_body TEXT
      );
      CREATE INDEX attempts_job ON attempts (job_id, id);

      -- No foreign key to jobs: a record whose job was pruned is treated as absent. The primary keys
      -- are what make two instances receiving one key at once create one job (see intake.ts).
      CREATE TABLE idempotency_keys (
        tenant_id    TEXT COLLATE "C" NOT NULL,
        key          TEXT COLLATE "C" NOT NULL,
        request_hash TEXT,
        job_id       TEXT COLLATE "C" NOT NULL,
        expires_at   BIGINT,
        PRIMARY KEY (tenant_id, key)
      );
      CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at) WHERE expires_at IS NOT NULL;

      CREATE TABLE dedupe_keys (
        tenant_id  TEXT COLLATE "C" NOT NULL,
        hash       TEXT COLLATE "C" NOT NULL,
        job_id     TEXT COLLATE "C" NOT NULL,
        expires_at BIGINT,
        PRIMARY KEY (tenant_id, hash)
      );
      CREATE INDEX dedupe_keys_expiry ON dedupe_keys (expires_at) WHERE expires_at IS NOT NULL;
    `,
  },
  {
    version: 2,
    name: 'api keys (hashed)',
    sql: `
      -- tenant_id NULL is an admin key. key_hash is the hex SHA-256 of the whole key; the key itself
      -- is never stored.
      CREATE TABLE api_keys (
        id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        tenant_id  TEXT,
        key_hash   TEXT   NOT NULL CHECK (length(key_hash) = 64),
        label      TEXT,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT
      );
    `,
  },
  {
    version: 3,
    name: 'bulk command records',
    sql: `
      -- A bulk command's Idempotency-Key: its request and the walk's progress (see bulk.ts). scope is
      -- the tenant the command is limited to, or '*'.
      CREATE TABLE bulk_operations (
        scope         TEXT COLLATE "C" NOT NULL,
        key           TEXT COLLATE "C" NOT NULL,
        request_hash  TEXT   NOT NULL,
        progress_json TEXT   NOT NULL,
        created_at    BIGINT NOT NULL,
        expires_at    BIGINT NOT NULL,
        PRIMARY KEY (scope, key)
      );
      CREATE INDEX bulk_operations_expiry ON bulk_operations (expires_at);
    `,
  },
  {
    version: 4,
    name: 'lanes: per-job in-flight cap, fair claims between tenants',
    sql: `
      -- rate_limit.max_in_flight; NULL: DESTINATION_MAX_IN_FLIGHT applies.
      ALTER TABLE jobs ADD COLUMN rate_limit_max_in_flight INTEGER;
      -- claimDue serves tenants in turn: finds the tenants with due jobs (a skip scan, one probe
      -- each) and claims a share per tenant.
      CREATE INDEX jobs_claim_tenant ON jobs (tenant_id, due_at, id)
        WHERE status IN ('scheduled','queued','retrying') AND lease_owner IS NULL;
    `,
  },
  {
    version: 5,
    name: 'ordering keys',
    sql: `
      -- Jobs of one (tenant_id, ordering_key) run one at a time, by ordering_seq (domain/ordering.ts).
      ALTER TABLE jobs ADD COLUMN ordering_key TEXT COLLATE "C";
      ALTER TABLE jobs ADD COLUMN ordering_seq BIGINT;
      -- Each key's line: its unfinished jobs in order (the head, the tail). Jobs without a key
      -- never enter it.
      CREATE INDEX jobs_ordering ON jobs (tenant_id, ordering_key, ordering_seq)
        WHERE ordering_key IS NOT NULL AND status IN ('scheduled','queued','running','retrying');
      -- listJobs by ordering_key, newest first.
      CREATE INDEX jobs_ordering_list ON jobs (ordering_key, tenant_id, id) WHERE ordering_key IS NOT NULL;
    `,
  },
  {
    version: 6,
    name: 'recurring schedules',
    sql: `
      -- One row per schedule (see domain/schedule.ts). next_tick_at is the first tick not yet made
      -- into a job; one instance at a time holds a due schedule under a lease while it creates the
      -- tick's job, whose idempotency key (schedule id + tick) makes a second try a replay.
      CREATE TABLE schedules (
        id               TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        tenant_id        TEXT COLLATE "C" NOT NULL,
        cron             TEXT    NOT NULL,
        time_zone        TEXT    NOT NULL,
        template_json    TEXT    NOT NULL,
        start_at         BIGINT,
        end_at           BIGINT,
        missed_ticks     TEXT    NOT NULL CHECK (missed_ticks IN ('catch_up','skip')),
        catch_up_limit   INTEGER NOT NULL,
        status           TEXT    NOT NULL CHECK (status IN ('active','paused','ended')),
        next_tick_at     BIGINT,
        last_tick_at     BIGINT,
        last_job_id      TEXT COLLATE "C",
        lease_owner      TEXT COLLATE "C",
        lease_expires_at BIGINT,
        created_at       BIGINT  NOT NULL,
        updated_at       BIGINT  NOT NULL
      );
      CREATE INDEX schedules_tenant ON schedules (tenant_id, id);
      CREATE INDEX schedules_due ON schedules (next_tick_at) WHERE status = 'active';
    `,
  },
  {
    version: 7,
    name: 'trace context of a job (W3C traceparent and tracestate)',
    sql: `
      -- The create span's traceparent (55 chars) and the client's tracestate (at most 512 chars);
      -- NULL: the job has no trace. Adding nullable columns without a default rewrites nothing.
      ALTER TABLE jobs ADD COLUMN traceparent TEXT;
      ALTER TABLE jobs ADD COLUMN tracestate TEXT;
    `,
  },
  // Versions 5 and 6 are other changes' (numbers assigned per branch).
  {
    version: 8,
    name: 'lanes across instances: destination leases',
    sql: `
      -- The destination (lane) of a job: the origin of its URL as new URL(url).origin gives it, written
      -- by every create. Rows written before this version get it from the URL here: scheme and host
      -- lower-cased, user info and a default port dropped (the JavaScript rule for every URL the API
      -- accepts, except hosts it would re-encode: IDN, IPv6 spelt long, numeric IPv4 forms).
      ALTER TABLE jobs ADD COLUMN origin TEXT COLLATE "C";
      UPDATE jobs SET origin = (
        SELECT lower(m[1]) || '://' || lower(m[2]) ||
          CASE WHEN coalesce(m[3], '') = '' OR (lower(m[1]) = 'http' AND m[3]::int = 80) OR (lower(m[1]) = 'https' AND m[3]::int = 443)
            THEN '' ELSE ':' || m[3]::int END
        FROM regexp_match(dest_url, '^([A-Za-z][A-Za-z0-9+.-]*)://(?:[^/?#]*@)?(\\[[0-9A-Fa-f:.]*\\]|[^/?#:]*)(?::([0-9]*))?') AS m);
      ALTER TABLE jobs ALTER COLUMN origin SET NOT NULL;

      -- Who delivers a destination's jobs: one instance at a time, under a lease renewed with its job
      -- leases (see postgres/lanes.ts). owner NULL: given up. The lane's state travels with it to the
      -- next owner: the circuit, and the token bucket's level at tokens_at.
      CREATE TABLE destination_leases (
        tenant_id     TEXT COLLATE "C" NOT NULL,
        origin        TEXT COLLATE "C" NOT NULL,
        owner         TEXT COLLATE "C",
        expires_at    BIGINT  NOT NULL,
        circuit       TEXT    NOT NULL DEFAULT 'closed' CHECK (circuit IN ('closed','open','half_open')),
        failures      INTEGER NOT NULL DEFAULT 0,
        open_until    BIGINT  NOT NULL DEFAULT 0,
        cooldown_ms   BIGINT,
        tokens        DOUBLE PRECISION,
        tokens_at     BIGINT,
        PRIMARY KEY (tenant_id, origin)
      );
      CREATE INDEX destination_leases_owner ON destination_leases (owner) WHERE owner IS NOT NULL;
    `,
  },
];

/** Applies every migration newer than the database, in order, under the advisory lock. Returns the versions applied. */
export async function migratePg(pool: pg.Pool, migrations: readonly PgMigration[] = PG_MIGRATIONS): Promise<number[]> {
  return transaction(pool, async (client) => {
    // Held until COMMIT/ROLLBACK. Taken before anything else: even CREATE TABLE IF NOT EXISTS is not
    // safe against a concurrent one (both may pass the check and one fails on the catalog).
    // No statement timeout inside: waiting for another instance's migration, or a long one on a
    // large table, must not fail the start (SET LOCAL ends with the transaction).
    await client.query('SET LOCAL statement_timeout = 0');
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
    await client.query(`
      CREATE TABLE IF NOT EXISTS schema_migrations (
        version    INTEGER PRIMARY KEY,
        name       TEXT NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
      )`);
    const current = (await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations')).rows[0]?.v ?? 0;
    const known = Math.max(0, ...migrations.map((m) => m.version));
    if (current > known) {
      throw new Error(`database schema is at version ${current}, newer than this build knows (${known})`);
    }
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (m.version <= current) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    return applied;
  });
}
