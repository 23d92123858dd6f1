// What the benchmark reads from the machine: process memory, file sizes, free ports, Redis, facts.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { cpus, totalmem, release } from 'node:os';
import { ROOT_DIR } from './procs.js';

/** Resident set size of a process in MB (VmRSS), or null when it is gone. */
export function rssMb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/**
 * CPU time a process has used so far (user + system, all its threads) in ms, or null when it is
 * gone. /proc counts in clock ticks (10 ms here), so it suits spans of seconds.
 */
export function cpuMs(pid: number): number | null {
  return statCpuMs(`/proc/${pid}/stat`);
}

/**
 * Starts measuring the CPU of some processes; the returned function gives each one's share of one
 * core (percent) since the start. Two cores in all make 200%.
 */
export function cpuShare<K extends string>(pids: Record<K, number>): () => Record<K, number | null> {
  const t0 = performance.now();
  const before = Object.fromEntries(Object.entries<number>(pids).map(([k, pid]) => [k, cpuMs(pid)])) as Record<K, number | null>;
  return () => {
    const wall = performance.now() - t0;
    const out = {} as Record<K, number | null>;
    for (const k of Object.keys(pids) as K[]) {
      const a = before[k];
      const b = cpuMs(pids[k]);
      out[k] = a === null || b === null || wall <= 0 ? null : Math.round(((b - a) / wall) * 100);
    }
    return out;
  };
}

/** CPU time so far (user + system, ms) of each thread of a process, by thread id; null when it is gone. */
export function threadCpuMs(pid: number): Map<number, number> | null {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  const out = new Map<number, number>();
  for (const tid of tids) {
    const ms = statCpuMs(`/proc/${pid}/task/${tid}/stat`);
    if (ms !== null) out.set(Number(tid), ms);
  }
  return out;
}

export interface ThreadSplit {
  /** The main thread (its id is the process's). */
  main: number;
  /** The other thread that used the most CPU: in PulseGate, the engine thread. */
  busiest: number;
  /** Every other thread together: libuv's pool (the fsyncs), V8's helpers, node's own. */
  rest: number;
}

/**
 * Starts measuring a process's threads; the returned function splits the CPU they used since then
 * into its main thread, its busiest other thread and the rest, each in % of one core (null when the
 * process is gone). Threads that started or ended meanwhile count from zero or not at all.
 */
export function threadSplit(pid: number): () => ThreadSplit | null {
  const t0 = performance.now();
  const before = threadCpuMs(pid);
  return () => {
    const wall = performance.now() - t0;
    const after = threadCpuMs(pid);
    if (!before || !after || wall <= 0) return null;
    let main = 0;
    const others: number[] = [];
    for (const [tid, ms] of after) {
      const used = ms - (before.get(tid) ?? 0);
      if (tid === pid) main = used;
      else others.push(used);
    }
    others.sort((a, b) => b - a);
    const busiest = others[0] ?? 0;
    const rest = others.slice(1).reduce((a, b) => a + b, 0);
    const share = (ms: number) => Math.round((ms / wall) * 100);
    return { main: share(main), busiest: share(busiest), rest: share(rest) };
  };
}

function statCpuMs(path: string): number | null {
  try {
    const stat = readFileSync(path, 'utf8');
    // fields after the command name, which is in parentheses and may hold spaces
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS_PER_S;
  } catch {
    return null;
  }
}

// USER_HZ: 100 on Linux for every architecture Node supports (sysconf(_SC_CLK_TCK))
const CLOCK_TICKS_PER_S = 100;

/** Total size in bytes of the files that exist among paths. */
export function sizeOf(paths: string[]): number {
  let total = 0;
  for (const p of paths) {
    try {
      total += statSync(p).size;
    } catch {
      // absent (no -wal yet, say)
    }
  }
  return total;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** True when something at host:port answers a Redis PING within timeoutMs. */
export function redisAnswers(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    let buf = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
    sock.on('error', () => done(false));
  });
}

export interface Machine {
  cpu: string;
  cores: number;
  memory_gb: number;
  kernel: string;
  node: string;
  commit: string;
}

export function machine(): Machine {
  const c = cpus();
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT_DIR, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT_DIR, encoding: 'utf8' }).trim();
    if (dirty) commit += '+uncommitted src changes';
  } catch {
    // not a git checkout
  }
  return {
    cpu: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    memory_gb: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    commit,
  };
}

export function packageVersion(name: string): string {
  try {
    const pkg = JSON.parse(readFileSync(`${ROOT_DIR}/node_modules/${name}/package.json`, 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return 'not installed';
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
