/*
 * The ticker: turns due schedule ticks into jobs. One loop per instance, driven by the Clock.
 *
 *   idle ──(timer at the earliest next tick, or notify() of an earlier one)──▶ round
 *   round: claim due schedules under a lease ─▶ for each: plan its due ticks (cron.ts), create each
 *          tick's job, advance next_tick_at and drop the lease (one guarded write) ─▶ arm the timer
 *          at the earliest next tick ─▶ idle
 *   any ──(stop)──▶ stopped (the timer cancelled, the round in progress finished)
 *
 * A tick's job carries an idempotency key made of the schedule id and the tick time, so a round that
 * dies between creating the job and advancing the schedule (a crash, a store fault) is redone after
 * the lease expires as an idempotent replay: a tick never becomes two jobs. The lease keeps two
 * instances from working on one schedule at once. The first round runs at start(): ticks missed
 * while no instance ran are created then (or skipped), as each schedule says.
 */

import type { Clock, Timer } from '../clock.js';
import type { Schedule } from '../domain/schedule.js';
import type { EventBus } from '../observability/events.js';
import type { ScheduleStore } from '../store/schedules.js';
import { compileCron, isCronError, planTicks, type CronSpec } from './cron.js';

export type TickJobOutcome =
  | { kind: 'created' | 'replayed' | 'deduplicated'; job_id: string }
  /** A rule refused the job (its destination is no longer allowed, say): the tick is skipped. */
  | { kind: 'refused'; reason: string };

export interface TickerOptions {
  store: Pick<ScheduleStore, 'claimDueSchedules' | 'advanceSchedule' | 'nextScheduleTickAt'>;
  clock: Clock;
  events: EventBus;
  /** This instance, as the holder of schedule leases. */
  owner: string;
  leaseMs: number;
  /** A tick older than this when its round runs was missed (SCHEDULE_MISSED_AFTER_MS). */
  missedAfterMs: number;
  /**
   * Re-read the store at least this often, for schedules another instance created; null when this
   * process alone writes the database (SQLite), where notify() tells it of every new one.
   */
  pollMs: number | null;
  /** Creates the job of one tick through the normal intake path; throws on a store fault. */
  createJob(schedule: Schedule, tickAt: number, now: number): Promise<TickJobOutcome>;
  /** Schedules claimed per statement. */
  batch?: number;
  /**
   * The first round takes over schedules whose lease is still running: right only when this
   * process is alone on the database (SQLite), where whoever held them is gone.
   */
  takeOverAtStart?: boolean;
}

/** How soon to look again at a schedule that is due but held (another instance is creating its tick). */
const HELD_RETRY_MS = 250;
/** How soon to try again after a store fault. */
const FAULT_RETRY_MS = 1000;
const MAX_COMPILED = 1000;

export class Ticker {
  private timer: Timer | null = null;
  private armedAt: number | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = true;
  private readonly compiled = new Map<string, CronSpec>();
  private takeOver = false;

  constructor(private readonly o: TickerOptions) {}

  /** Starts the loop with a round at once (the catch-up of ticks missed while stopped). */
  start(): void {
    this.stopped = false;
    this.takeOver = this.o.takeOverAtStart === true;
    this.wake();
  }

  /** A schedule now ticks at `at` (created or resumed here): wake then if that is sooner. */
  notify(at: number | null): void {
    if (this.stopped || at === null) return;
    if (this.armedAt === null || at < this.armedAt) this.arm(at);
  }

  /** Stops the loop; resolves once a round in progress has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
    this.armedAt = null;
    await this.running;
  }

  /** Resolves when no round is running (tests step the fake clock and wait for this). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  /** When the timer will wake the loop next (null: not armed). */
  get nextWakeAt(): number | null {
    return this.armedAt;
  }

  private arm(at: number): void {
    this.timer?.cancel();
    this.armedAt = at;
    this.timer = this.o.clock.setTimer(Math.max(0, at - this.o.clock.now()), () => {
      this.timer = null;
      this.armedAt = null;
      this.wake();
    });
  }

  private wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.again = false;
    this.running = this.rounds().finally(() => {
      this.running = null;
      // woken while it finished (after its last claim): a schedule may have come due since
      if (this.again) this.wake();
    });
  }

  private async rounds(): Promise<void> {
    let retryAt: number | null = null;
    try {
      const batch = this.o.batch ?? 100;
      for (let full = true; full && !this.stopped; ) {
        this.again = false;
        const claimed = await this.o.store.claimDueSchedules(this.o.owner, this.o.clock.now(), this.o.leaseMs, batch, { all: this.takeOver });
        this.takeOver = false;
        for (const s of claimed) {
          if (this.stopped) return;
          await this.fire(s);
        }
        full = claimed.length === batch || this.again;
      }
    } catch (err) {
      this.o.events.emit({ type: 'store.error', op: 'schedule_tick', error: (err as Error).message });
      retryAt = this.o.clock.now() + FAULT_RETRY_MS;
    }
    if (this.stopped) return;
    const now = this.o.clock.now();
    let at = retryAt ?? Number.POSITIVE_INFINITY;
    try {
      const next = await this.o.store.nextScheduleTickAt();
      // due but not claimable: another instance holds it and is creating its tick right now
      if (next !== null) at = Math.min(at, next <= now ? now + HELD_RETRY_MS : next);
    } catch (err) {
      this.o.events.emit({ type: 'store.error', op: 'schedule_next', error: (err as Error).message });
      at = Math.min(at, now + FAULT_RETRY_MS);
    }
    if (this.o.pollMs !== null) at = Math.min(at, now + this.o.pollMs);
    if (this.stopped) return;
    if (Number.isFinite(at) && (this.armedAt === null || at < this.armedAt || this.armedAt <= now)) this.arm(at);
  }

  private spec(s: Schedule): CronSpec | null {
    const key = `${s.cron}\n${s.time_zone}`;
    let spec = this.compiled.get(key);
    if (!spec) {
      const c = compileCron(s.cron, s.time_zone);
      if (isCronError(c)) return null;
      if (this.compiled.size >= MAX_COMPILED) this.compiled.clear();
      this.compiled.set(key, (spec = c));
    }
    return spec;
  }

  /** Creates the jobs of a claimed schedule's due ticks and advances it. */
  private async fire(s: Schedule): Promise<void> {
    const spec = this.spec(s);
    if (spec === null || s.next_tick_at === null) {
      // stored valid, now refused (a time zone gone from this runtime's tz database): left held,
      // so it is retried after its lease, and said loudly each time
      this.o.events.emit({ type: 'schedule.tick', schedule_id: s.id, tenant_id: s.tenant_id, tick_at: s.next_tick_at ?? 0, late_ms: 0, job_id: null, outcome: 'refused', reason: `cron ${s.cron} in ${s.time_zone} no longer compiles` });
      return;
    }
    const now = this.o.clock.now();
    const plan = planTicks(spec, { ...s, next_tick_at: s.next_tick_at }, now, this.o.missedAfterMs);
    let last: { tick: number; job_id: string } | null = null;
    for (const tick of plan.create) {
      const out = await this.o.createJob(s, tick, now);
      const job_id = out.kind === 'refused' ? null : out.job_id;
      this.o.events.emit({
        type: 'schedule.tick',
        schedule_id: s.id,
        tenant_id: s.tenant_id,
        tick_at: tick,
        late_ms: now - tick,
        job_id,
        outcome: out.kind,
        ...(out.kind === 'refused' ? { reason: out.reason } : {}),
      });
      if (job_id !== null) last = { tick, job_id };
    }
    if (plan.skipped > 0) {
      this.o.events.emit({ type: 'schedule.skipped', schedule_id: s.id, tenant_id: s.tenant_id, count: plan.skipped, policy: s.missed_ticks });
    }
    const applied = await this.o.store.advanceSchedule(
      { id: s.id, owner: this.o.owner, next_tick_at: plan.next, last_tick_at: last?.tick ?? null, last_job_id: last?.job_id ?? null },
      this.o.clock.now(),
    );
    if (applied && plan.next === null) this.o.events.emit({ type: 'schedule.changed', schedule_id: s.id, tenant_id: s.tenant_id, action: 'ended' });
  }
}
