// The PostgreSQL server the benchmark measures on (127.0.0.1:5432, user postgres; PG_BENCH_URL
// overrides): whether it answers, a fresh database per measurement (dropped after, and by the
// benchmark's exit handler if a run is interrupted), and the CPU its processes use.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { cpuMs } from './sys.js';
import { onServer as onServerAt, urlFor as urlOn } from '../../test/support/postgres.js';

export const PG_SERVER_URL = process.env.PG_BENCH_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const urlFor = (database: string) => urlOn(database, PG_SERVER_URL);
const onServer = <T>(fn: (client: pg.Client) => Promise<T>) => onServerAt(fn, PG_SERVER_URL);

/** Null when the server answers, else why not. */
export async function postgresUnreachable(): Promise<string | null> {
  try {
    await onServer((c) => c.query('SELECT 1'));
    return null;
  } catch (err) {
    return `no PostgreSQL answered at ${new URL(PG_SERVER_URL).host} (${(err as Error).message || String(err)})`;
  }
}

export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** Databases created and not dropped yet: the benchmark drops them if it is interrupted. */
const live = new Set<string>();

export async function createDatabase(name: string): Promise<BenchDatabase> {
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`bad database name ${name}`);
  await onServer((c) => c.query(`CREATE DATABASE ${name}`));
  live.add(name);
  return {
    name,
    url: urlFor(name),
    async drop() {
      await onServer((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
      live.delete(name);
    },
  };
}

/** For an exit handler, where nothing can be awaited: drops what is left with psql, synchronously. */
export function dropLeftoverDatabasesNow(): void {
  for (const name of live) {
    try {
      execFileSync('psql', [PG_SERVER_URL, '-qc', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      // psql missing or the server gone: nothing more to do here
    }
  }
  live.clear();
}

interface ServerProcess {
  pid: number;
  /** 'client backend' connected to this database, or an auxiliary process shared by all databases. */
  ours: boolean;
}

async function serverProcesses(database: string): Promise<ServerProcess[]> {
  const { rows } = await onServer((c) =>
    c.query<{ pid: number; backend_type: string; datname: string | null }>('SELECT pid, backend_type, datname FROM pg_stat_activity'),
  );
  return rows
    .filter((r) => r.pid !== undefined && (r.datname === database || r.backend_type !== 'client backend'))
    .map((r) => ({ pid: r.pid, ours: r.datname === database }));
}

/** CPU of the whole machine (all cores, busy jiffies) from /proc/stat, in ms; null off Linux. */
function machineBusyMs(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    return busy * 10;
  } catch {
    return null;
  }
}

/**
 * Starts measuring the server's CPU for one database: its backends (the sessions connected to it)
 * and the auxiliary processes every database shares (WAL writer, checkpointer, autovacuum, …),
 * plus the whole machine's. The returned function gives each as a share of one core (percent).
 */
export async function postgresCpuShare(database: string): Promise<() => Promise<{ backends: number | null; auxiliary: number | null; machine: number | null }>> {
  const t0 = performance.now();
  const before = new Map<number, number>();
  const m0 = machineBusyMs();
  for (const p of await serverProcesses(database)) before.set(p.pid, cpuMs(p.pid) ?? 0);
  return async () => {
    const wall = performance.now() - t0;
    let backends = 0;
    let auxiliary = 0;
    for (const p of await serverProcesses(database)) {
      const now = cpuMs(p.pid);
      if (now === null) continue;
      // a backend that started during the measurement used all its CPU in it
      const used = now - (before.get(p.pid) ?? 0);
      if (p.ours) backends += used;
      else auxiliary += used;
    }
    const m1 = machineBusyMs();
    const pct = (ms: number) => Math.round((ms / wall) * 100);
    return { backends: pct(backends), auxiliary: pct(auxiliary), machine: m0 === null || m1 === null ? null : pct(m1 - m0) };
  };
}
