// Versioned schema migrations for the SQLite driver. Append new versions; never edit an applied one.
// Each runs in its own IMMEDIATE transaction with its row in schema_migrations, so a crash mid-way
// leaves the previous version intact and two processes starting together apply each version once.

import type Database from 'better-sqlite3';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

// The partial-index predicates are repeated verbatim in the driver's queries: SQLite only uses a
// partial index when the query's WHERE contains the index's terms as written.
/** The predicate of jobs_status and jobs_tenant_status since migration 9, repeated by the queries that use them. */
export const NOT_SUCCESS = `status <> 'success'`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'jobs, attempts, idempotency and dedupe keys',
    sql: `
      CREATE TABLE jobs (
        id                  TEXT    NOT NULL PRIMARY KEY,
        tenant_id           TEXT    NOT NULL,
        type                TEXT    NOT NULL,
        status              TEXT    NOT NULL CHECK (status IN
                              ('scheduled','queued','running','retrying','success','failed','cancelled')),
        payload_json        TEXT    NOT NULL,
        dest_url            TEXT    NOT NULL,
        dest_method         TEXT    NOT NULL CHECK (dest_method IN ('POST','PUT','PATCH','DELETE')),
        dest_timeout_ms     INTEGER NOT NULL,
        dest_headers_json   TEXT    NOT NULL,
        retry_max_attempts  INTEGER NOT NULL,
        retry_base_delay_ms INTEGER NOT NULL,
        retry_max_delay_ms  INTEGER NOT NULL,
        rate_limit_rps      REAL,
        rate_limit_burst    INTEGER,
        run_at              INTEGER NOT NULL,
        due_at              INTEGER NOT NULL,
        attempts            INTEGER NOT NULL DEFAULT 0,
        next_attempt_at     INTEGER,
        last_error          TEXT,
        last_status_code    INTEGER,
        idempotency_key     TEXT,
        dedupe_key          TEXT,
        lease_owner         TEXT,
        lease_expires_at    INTEGER,
        created_at          INTEGER NOT NULL,
        updated_at          INTEGER NOT NULL,
        completed_at        INTEGER
      ) STRICT;

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
      -- recoverLeases (by expiry) and renewLeases (by owner); both cover held jobs only.
      CREATE INDEX jobs_lease_expiry ON jobs (lease_expires_at) WHERE lease_owner IS NOT NULL;
      CREATE INDEX jobs_lease_owner ON jobs (lease_owner) WHERE lease_owner IS NOT NULL;
      -- pruneTerminal.
      CREATE INDEX jobs_prune ON jobs (completed_at) WHERE status IN ('success','failed','cancelled');

      CREATE TABLE attempts (
        id            INTEGER PRIMARY KEY,
        job_id        TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        attempt       INTEGER NOT NULL,
        started_at    INTEGER NOT NULL,
        finished_at   INTEGER NOT NULL,
        duration_ms   INTEGER NOT NULL,
        outcome       TEXT    NOT NULL CHECK (outcome IN ('success','retryable_error','permanent_error')),
        error_kind    TEXT,
        status_code   INTEGER,
        error         TEXT,
        response_body TEXT
      ) STRICT;
      CREATE INDEX attempts_job ON attempts (job_id, id);

      -- No foreign key to jobs: a record whose job was pruned is treated as absent, which keeps
      -- job deletes from probing these tables.
      CREATE TABLE idempotency_keys (
        tenant_id    TEXT    NOT NULL,
        key          TEXT    NOT NULL,
        request_hash TEXT,
        job_id       TEXT    NOT NULL,
        expires_at   INTEGER,
        PRIMARY KEY (tenant_id, key)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at) WHERE expires_at IS NOT NULL;

      CREATE TABLE dedupe_keys (
        tenant_id  TEXT    NOT NULL,
        hash       TEXT    NOT NULL,
        job_id     TEXT    NOT NULL,
        expires_at INTEGER,
        PRIMARY KEY (tenant_id, hash)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX dedupe_keys_expiry ON dedupe_keys (expires_at) WHERE expires_at IS NOT NULL;
    `,
  },
  {
    version: 2,
    name: 'api keys (hashed)',
    sql: `
      -- tenant_id NULL is an admin key. key_hash is the hex SHA-256 of the whole key; the key itself
      -- is never stored. Looked up by id (the non-secret part of the key), so no index on the hash.
      CREATE TABLE api_keys (
        id         TEXT    NOT NULL PRIMARY KEY,
        tenant_id  TEXT,
        key_hash   TEXT    NOT NULL CHECK (length(key_hash) = 64),
        label      TEXT,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
      ) STRICT;
    `,
  },
  {
    version: 3,
    name: 'one index for held jobs',
    sql: `
      -- Every claim and every result changes lease_owner; one index over held jobs instead of two
      -- halves that index upkeep. Recovery scans it (held jobs only: a few thousand per process);
      -- renewal seeks by owner.
      DROP INDEX jobs_lease_expiry;
      DROP INDEX jobs_lease_owner;
      CREATE INDEX jobs_held ON jobs (lease_owner, lease_expires_at) WHERE lease_owner IS NOT NULL;
    `,
  },
  {
    version: 4,
    name: 'bulk command records (idempotent bulk retry and cancel)',
    sql: `
      -- One row per Idempotency-Key of a bulk command: the request's hash and how far it got (the
      -- walk's cursor and tally, JSON), advanced in the same transaction as each step's jobs.
      CREATE TABLE bulk_operations (
        scope         TEXT    NOT NULL,
        key           TEXT    NOT NULL,
        request_hash  TEXT    NOT NULL,
        progress_json TEXT    NOT NULL,
        created_at    INTEGER NOT NULL,
        expires_at    INTEGER NOT NULL,
        PRIMARY KEY (scope, key)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX bulk_operations_expiry ON bulk_operations (expires_at);
    `,
  },
  {
    version: 5,
    name: 'lanes: per-job in-flight cap, fair claims between tenants',
    sql: `
      -- rate_limit.max_in_flight; NULL: DESTINATION_MAX_IN_FLIGHT applies.
      ALTER TABLE jobs ADD COLUMN rate_limit_max_in_flight INTEGER;
      -- claimDue serves tenants in turn: finds the tenants with due jobs (one seek each) and claims
      -- a share per tenant. Covers waiting jobs no one holds, like jobs_claim: jobs claimed at
      -- insert never enter it.
      CREATE INDEX jobs_claim_tenant ON jobs (tenant_id, due_at, id)
        WHERE status IN ('scheduled','queued','retrying') AND lease_owner IS NULL;
    `,
  },
  {
    version: 6,
    name: 'ordering keys',
    sql: `
      -- Jobs of one (tenant_id, ordering_key) run one at a time, by ordering_seq (domain/ordering.ts).
      ALTER TABLE jobs ADD COLUMN ordering_key TEXT;
      ALTER TABLE jobs ADD COLUMN ordering_seq INTEGER;
      -- Each key's line: its unfinished jobs in order (the head, the tail). Jobs without a key
      -- never enter it.
      CREATE INDEX jobs_ordering ON jobs (tenant_id, ordering_key, ordering_seq)
        WHERE ordering_key IS NOT NULL AND status IN ('scheduled','queued','running','retrying');
      -- listJobs by ordering_key, newest first.
      CREATE INDEX jobs_ordering_list ON jobs (ordering_key, tenant_id, id) WHERE ordering_key IS NOT NULL;
    `,
  },
  {
    version: 7,
    name: 'recurring schedules',
    sql: `
      -- One row per schedule (see domain/schedule.ts). next_tick_at is the first tick not yet made
      -- into a job; the ticker holds a due schedule under a lease while it creates its tick's job.
      CREATE TABLE schedules (
        id               TEXT    NOT NULL PRIMARY KEY,
        tenant_id        TEXT    NOT NULL,
        cron             TEXT    NOT NULL,
        time_zone        TEXT    NOT NULL,
        template_json    TEXT    NOT NULL,
        start_at         INTEGER,
        end_at           INTEGER,
        missed_ticks     TEXT    NOT NULL CHECK (missed_ticks IN ('catch_up','skip')),
        catch_up_limit   INTEGER NOT NULL,
        status           TEXT    NOT NULL CHECK (status IN ('active','paused','ended')),
        next_tick_at     INTEGER,
        last_tick_at     INTEGER,
        last_job_id      TEXT,
        lease_owner      TEXT,
        lease_expires_at INTEGER,
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX schedules_tenant ON schedules (tenant_id, id);
      CREATE INDEX schedules_due ON schedules (next_tick_at) WHERE status = 'active';
    `,
  },
  {
    version: 8,
    name: 'trace context of a job (W3C traceparent and tracestate)',
    sql: `
      -- The create span's traceparent (55 chars) and the client's tracestate (at most 512 chars);
      -- NULL: the job has no trace. Never queried by, so not indexed.
      ALTER TABLE jobs ADD COLUMN traceparent TEXT;
      ALTER TABLE jobs ADD COLUMN tracestate TEXT;
    `,
  },
  {
    version: 9,
    name: 'fewer index updates per job: no type index, status indexes without successes',
    sql: `
      -- A delivered job leaves both status indexes instead of moving within them (two index
      -- inserts fewer per success): listing successes walks jobs_tenant or the table newest first
      -- and keeps the matches, which are most rows. Queries on other statuses repeat the predicate
      -- (SQLite matches a partial index by the text of its WHERE).
      DROP INDEX jobs_status;
      CREATE INDEX jobs_status ON jobs (status, id) WHERE status <> 'success';
      DROP INDEX jobs_tenant_status;
      CREATE INDEX jobs_tenant_status ON jobs (tenant_id, status, id) WHERE status <> 'success';
      -- One index update fewer per insert: a type filter walks jobs_tenant (a tenant's jobs) or
      -- the table, newest first.
      DROP INDEX jobs_type;
    `,
  },
];

/** Applies every migration newer than the database, in order. Returns the versions applied. */
export function migrate(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS): number[] {
  db.exec(`
    CREATE TABLE IF NOT EXISTS schema_migrations (
      version    INTEGER PRIMARY KEY,
      name       TEXT NOT NULL,
      applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    )
  `);
  const current = db.prepare<[], { v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
  const record = db.prepare('INSERT INTO schema_migrations (version, name) VALUES (?, ?)');

  const known = Math.max(0, ...migrations.map((m) => m.version));
  const atStart = current.get()?.v ?? 0;
  if (atStart > known) {
    throw new Error(`database schema is at version ${atStart}, newer than this build knows (${known})`);
  }

  const applied: number[] = [];
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  for (const m of sorted) {
    const applyOne = db.transaction(() => {
      // Re-read inside the write lock: another process may have applied it since.
      if ((current.get()?.v ?? 0) >= m.version) return false;
      db.exec(m.sql);
      record.run(m.version, m.name);
      return true;
    });
    if (applyOne.immediate()) applied.push(m.version);
  }
  return applied;
}
