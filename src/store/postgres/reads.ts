// Reads for the API and metrics: one job, a page of jobs, a job's attempts, counts per status.

import type pg from 'pg';
import type { Attempt } from '../../domain/attempt.js';
import { JOB_STATUSES, type Job, type JobStatus } from '../../domain/job.js';
import type { ListFilter, Page } from '../store.js';
import { query, type Sql } from './pool.js';
import { rowToAttempt, rowToJob, type AttemptRow, type JobRow } from './rows.js';

const MAX_LIST_LIMIT = 1000;

const GET_JOB: Sql = { name: 'pulsegate_get_job', text: 'SELECT * FROM jobs WHERE id = $1' };
const LIST_ATTEMPTS: Sql = { name: 'pulsegate_list_attempts', text: 'SELECT * FROM attempts WHERE job_id = $1 ORDER BY id' };
const COUNT_BY_STATUS: Sql = { text: 'SELECT status, count(*) AS n FROM jobs GROUP BY status' };

export async function getJob(pool: pg.Pool, id: string): Promise<Job | null> {
  const { rows } = await query<JobRow>(pool, GET_JOB, [id]);
  return rows[0] ? rowToJob(rows[0]) : null;
}

export async function listJobs(pool: pg.Pool, filter: ListFilter, limit: number, cursor: string | null): Promise<Page<Job>> {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new RangeError(`limit must be an integer in 1..${MAX_LIST_LIMIT}, got ${limit}`);
  }
  const values: unknown[] = [];
  const where: string[] = [];
  let key = '';
  const add = (column: string, op: string, value: unknown, tag: string) => {
    values.push(value);
    where.push(`${column} ${op} $${values.length}`);
    key += tag;
  };
  if (filter.tenant_id !== undefined) add('tenant_id', '=', filter.tenant_id, 't');
  if (filter.status !== undefined) add('status', '=', filter.status, 's');
  if (filter.type !== undefined) add('type', '=', filter.type, 'y');
  if (filter.ordering_key !== undefined) add('ordering_key', '=', filter.ordering_key, 'o');
  // The cursor is the last id of the previous page; ids sort by creation time (byte-wise: the
  // column is COLLATE "C"), so any string is a sound bound and jobs created while walking never reappear.
  if (cursor !== null) add('id', '<', cursor, 'c');
  values.push(limit + 1);
  const text = `SELECT * FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${values.length}`;
  const { rows } = await query<JobRow>(pool, { name: `pulsegate_list_${key}`, text }, values);
  const more = rows.length > limit;
  if (more) rows.pop();
  const last = rows[rows.length - 1];
  return { data: rows.map(rowToJob), next_cursor: more && last ? last.id : null };
}

export async function listAttempts(pool: pg.Pool, jobId: string): Promise<Attempt[]> {
  return (await query<AttemptRow>(pool, LIST_ATTEMPTS, [jobId])).rows.map(rowToAttempt);
}

export async function countByStatus(pool: pg.Pool): Promise<Record<JobStatus, number>> {
  const counts = Object.fromEntries(JOB_STATUSES.map((st) => [st, 0])) as Record<JobStatus, number>;
  for (const { status, n } of (await query<{ status: JobStatus; n: number }>(pool, COUNT_BY_STATUS)).rows) counts[status] = n;
  return counts;
}
