// Wake-ups across instances (LISTEN/NOTIFY). An instance that writes work another instance could
// take — a created job nobody holds, jobs given back — sends `NOTIFY pulsegate_due, '<sender>:<due_at>'`
// in the same statement, so it is delivered at that commit and never for a rolled-back one. Every
// instance listens on one dedicated connection and hands the due time to its engine (notifyDue):
// a job created on one instance and due now is claimed by another within a round trip, instead of
// at that instance's next poll. An instance ignores its own notifications (its intake already
// told its engine). Notifications are a hint: a listener that was disconnected misses some, and
// the poll (SCHEDULER_POLL_INTERVAL_MS) still finds that work; on every (re)connect the listener
// reports "due now" so its engine claims at once.

import { randomUUID } from 'node:crypto';
import pg from 'pg';

export const DUE_CHANNEL = 'pulsegate_due';

/** Who sends: an instance's notifications carry it, so its own listener can skip them. */
export interface NotifyTarget {
  channel: string;
  sender: string;
}

export function newSender(): string {
  return randomUUID();
}

export interface DueListenerOptions {
  connectionString: string;
  sender: string;
  onDue: (dueAt: number) => void;
  onError?: (err: Error) => void;
  /** First reconnect delay; doubles up to 30 s. */
  retryMs?: number;
}

const MAX_RETRY_MS = 30_000;

export class DueListener {
  private client: pg.Client | null = null;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private retryMs: number;

  constructor(private readonly o: DueListenerOptions) {
    this.retryMs = o.retryMs ?? 1000;
  }

  /** Connects and listens; if the first connection fails it keeps retrying in the background. */
  async start(): Promise<void> {
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.o.connectionString, application_name: 'pulsegate-listener' });
    client.on('notification', (msg) => this.onNotification(msg.payload));
    // A lost connection: retry later (the poll covers the gap). Both events may fire for one loss.
    const lost = (err?: Error) => {
      if (this.client !== client) return;
      this.client = null;
      if (err) this.o.onError?.(err);
      client.end().catch(() => undefined);
      this.retryLater();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    try {
      await client.connect();
      await client.query(`LISTEN ${DUE_CHANNEL}`);
    } catch (err) {
      this.o.onError?.(err as Error);
      client.end().catch(() => undefined);
      this.retryLater();
      return;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.retryMs = this.o.retryMs ?? 1000;
    this.o.onDue(0); // anything notified while not listening is due by now
  }

  private retryLater(): void {
    if (this.stopped || this.timer) return;
    // A reconnect delay is not the engine's time: the system timer is fine here, and unref'd.
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, this.retryMs);
    this.timer.unref();
    this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs * 2);
  }

  private onNotification(payload: string | undefined): void {
    if (!payload) return;
    const colon = payload.lastIndexOf(':');
    if (colon < 0 || payload.slice(0, colon) === this.o.sender) return;
    const dueAt = Number(payload.slice(colon + 1));
    if (Number.isFinite(dueAt)) this.o.onDue(dueAt);
  }
}
