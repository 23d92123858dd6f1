// Request/response over a child process's IPC channel: the benchmark drives the receiver, the load
// generator and the BullMQ peer with it. A child answers each call once; it may also send events
// (progress) that are not answers.

import type { ChildProcess } from 'node:child_process';

interface Call {
  id: number;
  cmd: string;
  args: unknown;
}
type Answer = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };
interface EventMessage {
  event: string;
  data: unknown;
}

export class RpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private readonly listeners = new Map<string, ((data: unknown) => void)[]>();
  private readonly readyPromise: Promise<void>;

  constructor(
    private readonly child: ChildProcess,
    private readonly name: string,
  ) {
    // listening from the start: a child may be ready before anyone asks
    this.readyPromise = new Promise<void>((resolve, reject) => {
      this.on('ready', () => resolve());
      child.once('exit', (code, signal) => reject(new Error(`${name} exited (${signal ?? code}) while starting`)));
    });
    this.readyPromise.catch(() => undefined);
    child.on('message', (m: Answer | EventMessage) => {
      if ('event' in m) {
        for (const fn of this.listeners.get(m.event) ?? []) fn(m.data);
        return;
      }
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`${name}: ${m.error}`));
    });
    child.on('exit', (code, signal) => this.failAll(new Error(`${name} exited (${signal ?? code}) before answering`)));
  }

  /** The child's process id (for CPU accounting). */
  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Resolves once the child serves calls; rejects if it exits first or takes longer than timeoutMs. */
  ready(timeoutMs = 30_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name} did not start within ${timeoutMs} ms`)), timeoutMs);
    });
    return Promise.race([this.readyPromise, late]).finally(() => clearTimeout(timer));
  }

  call<T>(cmd: string, args: unknown = {}, timeoutMs = 60_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} got no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      const msg: Call = { id, cmd, args };
      this.child.send(msg);
    });
  }

  /** Listens for events; returns a function that stops listening. */
  on(event: string, fn: (data: unknown) => void): () => void {
    const list = this.listeners.get(event) ?? [];
    list.push(fn);
    this.listeners.set(event, list);
    return () => list.splice(list.indexOf(fn), 1);
  }

  private failAll(err: Error): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(err);
    }
  }
}

export type Handlers = Record<string, (args: never) => unknown>;

/** In a child: answers calls with the handlers, and exits when the benchmark goes away. */
export function serve(handlers: Handlers): void {
  if (!process.send) throw new Error('this process must be started by bench/run.ts (it needs an IPC channel)');
  process.on('message', (m: Call) => {
    const handler = handlers[m.cmd] as ((args: unknown) => unknown) | undefined;
    const reply = (a: Answer) => process.send?.(a);
    if (!handler) {
      reply({ id: m.id, ok: false, error: `unknown command ${m.cmd}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(m.args))
      .then(
        (result) => reply({ id: m.id, ok: true, result: result ?? null }),
        (err: unknown) => reply({ id: m.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
  });
  process.on('disconnect', () => process.exit(0));
  emit('ready', null);
}

/** In a child: sends an event that is not an answer to a call. */
export function emit(event: string, data: unknown): void {
  const msg: EventMessage = { event, data };
  process.send?.(msg);
}
