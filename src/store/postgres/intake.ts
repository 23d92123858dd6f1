// createJobs for the PostgreSQL driver: a batch in one transaction, written with one statement per
// table (unnest of column arrays), with the Store contract's idempotency and dedupe rules.
//
// Several instances share the database, so two of them may receive one Idempotency-Key (or one
// dedupe hash) at the same moment. The keys tables' primary keys decide who wins:
//   1. read the unexpired records for every key and hash in the batch (one query per table);
//   2. decide each input in order, in memory (later inputs see the earlier ones' records);
//   3. reserve the records this batch writes: INSERT … ON CONFLICT DO UPDATE that only replaces an
//      expired record (or one whose job was pruned). A record that another transaction committed
//      since step 1 is neither inserted nor replaced, so fewer rows come back than were sent;
//   4. all reserved: insert the jobs and commit. Otherwise roll back to before step 3 and start
//      again at step 1, whose new snapshot now sees the winner's record (a replay or a conflict).
// ON CONFLICT waits for a concurrent transaction holding the same key to end, so step 3 never
// misses a record that commits while it runs. Records are written in key order (deadlock-free
// between creates); pruneExpiredKeys skips locked rows, so it never waits on a create.

import type pg from 'pg';
import type { CreateOutcome, Job, JobStatus, NewJob } from '../../domain/job.js';
import type { OrderingKey } from '../../domain/ordering.js';
import type { LinePlace } from '../sqlite/rows.js';
import type { NotifyTarget } from './notifier.js';
import { lineTails, lockKeys, placer, type LineTails } from './ordering.js';
import { query, transaction, type Queryable, type Sql } from './pool.js';
import { JOB_COLUMNS, JOB_UNNEST, jobColumnArrays, newJobToJob, rowToJob, type JobRow } from './rows.js';

/** Rounds of step 1-3 before giving up; each lost round means a competitor committed one of our keys. */
const MAX_ROUNDS = 8;

const INSERT_JOBS: Sql = {
  name: 'pulsegate_insert_jobs',
  text: `INSERT INTO jobs (${JOB_COLUMNS.join(', ')}) SELECT * FROM ${JOB_UNNEST}`,
};
// The same, waking the other instances (see notifier.ts) in the same statement: delivered at its commit.
const INSERT_JOBS_NOTIFY: Sql = {
  name: 'pulsegate_insert_jobs_notify',
  text: `WITH ins AS (${INSERT_JOBS.text}) SELECT pg_notify($${JOB_COLUMNS.length + 1}, $${JOB_COLUMNS.length + 2})`,
};

// LEFT JOIN: a live record whose job was pruned comes back with a null job (k_job_id says which).
const FIND_IDEMPOTENCY: Sql = {
  name: 'pulsegate_find_idempotency',
  text: `
    SELECT k.tenant_id AS k_tenant_id, k.key AS k_key, k.request_hash AS k_request_hash, k.job_id AS k_job_id, j.*
    FROM idempotency_keys k
    JOIN unnest($1::text[], $2::text[]) AS q(tenant_id, key) ON k.tenant_id = q.tenant_id AND k.key = q.key
    LEFT JOIN jobs j ON j.id = k.job_id
    WHERE k.expires_at IS NULL OR k.expires_at > $3`,
};

const FIND_DEDUPE: Sql = {
  name: 'pulsegate_find_dedupe',
  text: `
    SELECT d.tenant_id AS k_tenant_id, d.hash AS k_key, d.job_id AS k_job_id, j.*
    FROM dedupe_keys d
    JOIN unnest($1::text[], $2::text[]) AS q(tenant_id, hash) ON d.tenant_id = q.tenant_id AND d.hash = q.hash
    LEFT JOIN jobs j ON j.id = d.job_id
    WHERE d.expires_at IS NULL OR d.expires_at > $3`,
};

// Replaces only what the contract lets a create replace: an expired record, or the record read in
// step 1 whose job was pruned ($7: those job ids; job ids are unique, so no other record matches).
const PUT_IDEMPOTENCY: Sql = {
  name: 'pulsegate_put_idempotency',
  text: `
    INSERT INTO idempotency_keys AS k (tenant_id, key, request_hash, job_id, expires_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[])
    ON CONFLICT (tenant_id, key) DO UPDATE SET
      request_hash = excluded.request_hash, job_id = excluded.job_id, expires_at = excluded.expires_at
    WHERE (k.expires_at IS NOT NULL AND k.expires_at <= $6) OR k.job_id = ANY($7::text[])
    RETURNING 1`,
};

const PUT_DEDUPE: Sql = {
  name: 'pulsegate_put_dedupe',
  text: `
    INSERT INTO dedupe_keys AS d (tenant_id, hash, job_id, expires_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[])
    ON CONFLICT (tenant_id, hash) DO UPDATE SET job_id = excluded.job_id, expires_at = excluded.expires_at
    WHERE (d.expires_at IS NOT NULL AND d.expires_at <= $5) OR d.job_id = ANY($6::text[])
    RETURNING 1`,
};

interface KeyRecord {
  request_hash: string | null;
  job: Job;
}

interface IdempotencyWrite {
  tenant_id: string;
  key: string;
  request_hash: string | null;
  job_id: string;
  expires_at: number | null;
}

interface DedupeWrite {
  tenant_id: string;
  hash: string;
  job_id: string;
  expires_at: number | null;
}

interface Plan {
  outcomes: CreateOutcome[];
  inserts: { job: NewJob; status: JobStatus; place: LinePlace | null }[];
  idempotency: IdempotencyWrite[];
  dedupe: DedupeWrite[];
  prunedJobIds: string[];
}

interface Existing {
  idempotency: Map<string, KeyRecord>;
  dedupe: Map<string, KeyRecord>;
  /** Job ids of live records whose job is gone: such a record counts as absent and is replaced. */
  prunedJobIds: string[];
}

const mapKey = (tenant: string, key: string): string => `${tenant}\u0000${key}`;

/**
 * With `notify`, a batch that creates jobs nobody holds (another instance could take them) wakes
 * the other instances with the earliest of their due times.
 */
export async function createJobs(pool: pg.Pool, jobs: NewJob[], now: number, notify: NotifyTarget | null = null): Promise<CreateOutcome[]> {
  if (jobs.length === 0) return [];
  const insert = (db: Queryable, plan: Plan) => {
    const columns = jobColumnArrays(plan.inserts, now);
    let due = Infinity;
    for (const { job, place } of plan.inserts) if (!job.lease && !place?.waiting && job.run_at < due) due = job.run_at;
    return notify && due !== Infinity
      ? query(db, INSERT_JOBS_NOTIFY, [...columns, notify.channel, `${notify.sender}:${due}`])
      : query(db, INSERT_JOBS, columns);
  };
  const lines: OrderingKey[] = [];
  for (const j of jobs) if (j.ordering_key) lines.push({ tenant_id: j.tenant_id, key: j.ordering_key });
  const keyed = lines.length > 0 || jobs.some((j) => j.idempotency_key !== null || j.dedupe_hash !== null);
  if (!keyed) {
    // Nothing to look up: one statement, atomic on its own.
    const plan = decide(jobs, now, { idempotency: new Map(), dedupe: new Map(), prunedJobIds: [] }, null);
    await insert(pool, plan);
    return plan.outcomes;
  }
  return transaction(pool, async (client) => {
    // ordering keys first (see ordering.ts); their lines cannot change while the locks are held
    await lockKeys(client, lines);
    const tails = lines.length > 0 ? await lineTails(client, lines) : null;
    await client.query('SAVEPOINT before_keys');
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const plan = decide(jobs, now, await readExisting(client, jobs, now), tails);
      if (await reserve(client, plan, now)) {
        if (plan.inserts.length > 0) await insert(client, plan);
        return plan.outcomes;
      }
      await client.query('ROLLBACK TO SAVEPOINT before_keys');
    }
    throw new Error(`createJobs: keys kept being taken by concurrent creates (${MAX_ROUNDS} rounds)`);
  });
}

async function readExisting(db: Queryable, jobs: NewJob[], now: number): Promise<Existing> {
  const out: Existing = { idempotency: new Map(), dedupe: new Map(), prunedJobIds: [] };
  const withKey = jobs.filter((j) => j.idempotency_key !== null);
  const withHash = jobs.filter((j) => j.dedupe_hash !== null);
  type Found = JobRow & { k_tenant_id: string; k_key: string; k_job_id: string; k_request_hash?: string | null };
  const collect = (rows: Found[], into: Map<string, KeyRecord>) => {
    for (const r of rows) {
      // a LEFT JOIN miss leaves every jobs column null, id included
      if (r.id === null) out.prunedJobIds.push(r.k_job_id);
      else into.set(mapKey(r.k_tenant_id, r.k_key), { request_hash: r.k_request_hash ?? null, job: rowToJob(r) });
    }
  };
  if (withKey.length > 0) {
    const r = await query<Found>(db, FIND_IDEMPOTENCY, [withKey.map((j) => j.tenant_id), withKey.map((j) => j.idempotency_key), now]);
    collect(r.rows, out.idempotency);
  }
  if (withHash.length > 0) {
    const r = await query<Found>(db, FIND_DEDUPE, [withHash.map((j) => j.tenant_id), withHash.map((j) => j.dedupe_hash), now]);
    collect(r.rows, out.dedupe);
  }
  return out;
}

/**
 * Step 2: each input in order, as the contract states it, against what exists plus what the batch
 * made. Keyed jobs join their lines behind `tails` (read once under the keys' locks; each round
 * starts from them again, as its inserts were rolled back).
 */
function decide(jobs: NewJob[], now: number, existing: Existing, tails: LineTails | null): Plan {
  const place = tails ? placer(tails) : null;
  const idem = new Map(existing.idempotency);
  const dedupe = new Map(existing.dedupe);
  const plan: Plan = { outcomes: [], inserts: [], idempotency: [], dedupe: [], prunedJobIds: existing.prunedJobIds };
  const putIdempotency = (j: NewJob, key: string, job: Job) => {
    idem.set(mapKey(j.tenant_id, key), { request_hash: j.idempotency_hash, job });
    plan.idempotency.push({ tenant_id: j.tenant_id, key, request_hash: j.idempotency_hash, job_id: job.id, expires_at: j.idempotency_expires_at });
  };
  for (const j of jobs) {
    if (j.idempotency_key !== null) {
      const prior = idem.get(mapKey(j.tenant_id, j.idempotency_key));
      if (prior) {
        plan.outcomes.push(
          prior.request_hash === j.idempotency_hash
            ? { kind: 'idempotent_replay', job: prior.job }
            : { kind: 'idempotency_conflict', job_id: prior.job.id },
        );
        continue;
      }
    }
    if (j.dedupe_hash !== null) {
      const original = dedupe.get(mapKey(j.tenant_id, j.dedupe_hash));
      if (original) {
        if (j.idempotency_key !== null) putIdempotency(j, j.idempotency_key, original.job);
        plan.outcomes.push({ kind: 'deduplicated', job: original.job });
        continue;
      }
    }
    const status: JobStatus = j.run_at > now ? 'scheduled' : 'queued';
    const linePlace = j.ordering_key && place ? place({ tenant_id: j.tenant_id, key: j.ordering_key }) : null;
    const job = newJobToJob(j, status, now, linePlace);
    plan.inserts.push({ job: j, status, place: linePlace });
    if (j.idempotency_key !== null) putIdempotency(j, j.idempotency_key, job);
    if (j.dedupe_hash !== null) {
      dedupe.set(mapKey(j.tenant_id, j.dedupe_hash), { request_hash: null, job });
      plan.dedupe.push({ tenant_id: j.tenant_id, hash: j.dedupe_hash, job_id: j.id, expires_at: j.dedupe_expires_at });
    }
    plan.outcomes.push({ kind: 'created', job });
  }
  // Key order: two creates lock the records they share in the same order.
  plan.idempotency.sort((a, b) => cmp(a.tenant_id, b.tenant_id) || cmp(a.key, b.key));
  plan.dedupe.sort((a, b) => cmp(a.tenant_id, b.tenant_id) || cmp(a.hash, b.hash));
  return plan;
}

/** Step 3. True when every record the plan writes is now this transaction's. */
async function reserve(db: Queryable, plan: Plan, now: number): Promise<boolean> {
  const pruned = plan.prunedJobIds;
  if (plan.idempotency.length > 0) {
    const w = plan.idempotency;
    const r = await query(db, PUT_IDEMPOTENCY, [
      w.map((x) => x.tenant_id), w.map((x) => x.key), w.map((x) => x.request_hash), w.map((x) => x.job_id), w.map((x) => x.expires_at),
      now, pruned,
    ]);
    if (r.rowCount !== w.length) return false;
  }
  if (plan.dedupe.length > 0) {
    const w = plan.dedupe;
    const r = await query(db, PUT_DEDUPE, [
      w.map((x) => x.tenant_id), w.map((x) => x.hash), w.map((x) => x.job_id), w.map((x) => x.expires_at), now, pruned,
    ]);
    if (r.rowCount !== w.length) return false;
  }
  return true;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
