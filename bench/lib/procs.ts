// Every process the benchmark starts goes through here, so every one of them is stopped: after each
// scenario, on an error, on Ctrl-C, and (synchronously, with SIGKILL) when the benchmark exits.
// Each child also preloads orphan-guard.mjs, which ends it if the benchmark itself is killed.

import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { RpcClient } from './rpc.js';

export const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url));
export const ROOT_DIR = fileURLToPath(new URL('../..', import.meta.url));
const GUARD = fileURLToPath(new URL('../orphan-guard.mjs', import.meta.url));

export interface SpawnOptions {
  /** Arguments for node before the script (e.g. --cpu-prof). */
  nodeArgs?: string[];
  args?: string[];
  env?: Record<string, string>;
  /** Run a TypeScript script through tsx. */
  tsx?: boolean;
  /** Open an IPC channel and return an RpcClient for it. */
  ipc?: boolean;
  /** Send the child's stdout to this file instead of discarding it. */
  stdoutFile?: string;
}

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  rpc: RpcClient | null;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
}

export class Procs {
  private readonly live = new Set<Child>();

  spawn(name: string, script: string, o: SpawnOptions = {}): Child {
    const execArgs = [...(o.nodeArgs ?? []), '--import', GUARD];
    if (o.tsx) execArgs.push('--import', 'tsx');
    const out = o.stdoutFile ? openSync(o.stdoutFile, 'a') : 'ignore';
    const proc = spawn(process.execPath, [...execArgs, script, ...(o.args ?? [])], {
      cwd: ROOT_DIR,
      env: { ...process.env, ...o.env },
      stdio: o.ipc ? ['ignore', out, 'inherit', 'ipc'] : ['ignore', out, 'inherit'],
    });
    if (typeof out === 'number') closeSync(out);
    if (proc.pid === undefined) throw new Error(`could not start ${name}`);
    const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, signal) => resolve(signal ?? code ?? 0)));
    const child: Child = { name, proc, pid: proc.pid, rpc: o.ipc ? new RpcClient(proc, name) : null, exited };
    this.live.add(child);
    void exited.then(() => this.live.delete(child));
    return child;
  }

  /** Asks a child to stop (SIGTERM), then kills it if it has not gone within timeoutMs. */
  async stop(child: Child, timeoutMs = 15_000): Promise<number | string> {
    if (!this.live.has(child)) return child.exited;
    child.proc.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        console.error(`[bench] ${child.name} did not stop in ${timeoutMs} ms: killing it`);
        child.proc.kill('SIGKILL');
        resolve();
      }, timeoutMs);
    });
    await Promise.race([child.exited, killed]);
    clearTimeout(timer);
    return child.exited;
  }

  async stopAll(timeoutMs = 10_000): Promise<void> {
    await Promise.all([...this.live].map((c) => this.stop(c, timeoutMs)));
  }

  /** For process 'exit': no time left to wait, so SIGKILL whatever still runs. */
  killAllNow(): void {
    for (const c of this.live) c.proc.kill('SIGKILL');
  }

  get count(): number {
    return this.live.size;
  }
}
