// Starts PulseGate as production runs it: the built dist/main.js in a process of its own, with the
// production Node flags (src/node-flags.ts), on a fresh SQLite file in a fresh directory, listening
// on 127.0.0.1 only.

import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { ROOT_DIR, type Child, type Procs } from './procs.js';
import { freePort, rssMb, sizeOf, sleep } from './sys.js';
import { NODE_FLAGS } from '../../src/node-flags.js';

export interface PulseGateSettings {
  SQLITE_SYNCHRONOUS: 'FULL' | 'NORMAL';
  /** Left to the service's default when absent. */
  WORKER_CONCURRENCY?: number;
  LOG_LEVEL: string;
}

export interface RunningPulseGate {
  url: string;
  pid: number;
  dir: string;
  dbPath: string;
  child: Child;
  rssMb(): number | null;
  /** The database, its WAL and shared-memory files, in bytes. */
  dbBytes(): number;
  /** Graceful stop (SIGTERM: drain, close the store); returns the newest CPU profile written, if any. */
  /** Stops it; with --cpu-prof, its profiles: the main thread's, then the busiest other thread's (the engine thread). */
  stop(): Promise<{ thread: string; file: string }[]>;
}

export async function startPulseGate(
  procs: Procs,
  dir: string,
  settings: PulseGateSettings,
  o: { cpuProf?: boolean; env?: Record<string, string> } = {},
): Promise<RunningPulseGate> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const dbPath = join(dir, 'pulsegate.db');
  const profDir = join(dir, 'profile');
  const child = procs.spawn('pulsegate', join(ROOT_DIR, 'dist/main.js'), {
    nodeArgs: [...NODE_FLAGS, ...(o.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [])],
    stdoutFile: join(dir, 'pulsegate.log'),
    env: {
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_PATH: dbPath,
      ALLOW_PRIVATE_DESTINATIONS: 'true',
      SQLITE_SYNCHRONOUS: settings.SQLITE_SYNCHRONOUS,
      ...(settings.WORKER_CONCURRENCY === undefined ? {} : { WORKER_CONCURRENCY: String(settings.WORKER_CONCURRENCY) }),
      LOG_LEVEL: settings.LOG_LEVEL,
      ...o.env,
    },
  });
  const url = `http://127.0.0.1:${port}`;
  let exited: number | string | null = null;
  void child.exited.then((c) => (exited = c));
  const until = Date.now() + 30_000;
  for (;;) {
    if (exited !== null) throw new Error(`PulseGate exited (${exited}) before it was ready; see ${join(dir, 'pulsegate.log')}`);
    if (Date.now() > until) {
      await procs.stop(child);
      throw new Error('PulseGate was not ready within 30 s');
    }
    try {
      const res = await request(`${url}/readyz`);
      await res.body.dump();
      if (res.statusCode === 200) break;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  return {
    url,
    pid: child.pid,
    dir,
    dbPath,
    child,
    rssMb: () => rssMb(child.pid),
    dbBytes: () => sizeOf([dbPath, `${dbPath}-wal`, `${dbPath}-shm`]),
    async stop() {
      const code = await procs.stop(child, 60_000);
      if (code !== 0) console.error(`[bench] PulseGate exited with ${code}; see ${join(dir, 'pulsegate.log')}`);
      if (!o.cpuProf) return [];
      try {
        // CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile: thread 0 is the main thread; of the
        // others (the engine thread, the store's checkpoint worker) the largest profile is the busiest
        const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')).sort();
        const threadOf = (f: string) => /\.(\d+)\.\d+\.cpuprofile$/.exec(f)?.[1] ?? '?';
        const main = files.filter((f) => threadOf(f) === '0');
        const others = files.filter((f) => threadOf(f) !== '0').sort((a, b) => statSync(join(profDir, b)).size - statSync(join(profDir, a)).size);
        const out = main.length ? [{ thread: 'main thread', file: join(profDir, main[main.length - 1] as string) }] : [];
        if (others[0]) out.push({ thread: `thread ${threadOf(others[0])}`, file: join(profDir, others[0]) });
        return out;
      } catch {
        return [];
      }
    },
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
