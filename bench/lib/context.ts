// What every scenario is handed, and the shape of what it gives back.

import type { RunningPulseGate } from './pulsegate.js';
import type { Procs } from './procs.js';
import type { RpcClient } from './rpc.js';
import type { Frame } from './profile.js';
import type { CreateResult, Target } from '../loadgen.js';
import type { ReceiverStats } from '../receiver.js';

export interface Options {
  quick: boolean;
  rounds: number;
  /** Rounds of the backlog scenario (its 1M jobs take minutes per round). */
  backlogRounds: number;
  /** Jobs in the delivery and end-to-end scenarios. */
  jobs: number;
  backlog: number;
  intakeSeconds: number;
  warmupSeconds: number;
  pacedRate: number;
  pacedSeconds: number;
  /** The soak: how long it creates jobs, and how many per second. */
  soakSeconds: number;
  soakRate: number;
  /** Concurrent keep-alive clients of the load generator. */
  connections: number;
  /** Deliveries in flight: PulseGate's WORKER_CONCURRENCY, the BullMQ worker's, raw undici's. */
  concurrency: number;
  /** SQLITE_SYNCHRONOUS per scenario name. */
  sync: Record<string, 'FULL' | 'NORMAL'>;
  logLevel: string;
  /** More environment for PulseGate (--env NAME=VALUE). */
  pgEnv: Record<string, string>;
  only: string[] | null;
  bullmq: boolean;
  cpuProf: boolean;
  build: boolean;
  resultsDir: string;
}

/** One round's figures for one scenario; null where a figure could not be taken (peer skipped). */
export type Figures = Record<string, number | null>;

export interface Profile {
  label: string;
  file: string;
  busy_ms: number;
  idle_ms: number;
  frames: Frame[];
}

export interface Ctx {
  o: Options;
  procs: Procs;
  runId: string;
  receiver: RpcClient;
  receiverUrl: string;
  loadgen: RpcClient;
  /** The BullMQ worker process; null when the peer is skipped (peerSkipped says why). */
  peer: RpcClient | null;
  peerSkipped: string | null;
  redis: { host: string; port: number };
  log(msg: string): void;
  /** SQLITE_SYNCHRONOUS for the scenario running now. */
  sync: 'FULL' | 'NORMAL';
  /** A fresh directory for one PulseGate run (removed by finishPulseGate). */
  tmpFor(label: string): string;
  /** A PulseGate on a fresh database (or on the one already in dir, or the one env's DATABASE_URL names). */
  startPulseGate(label: string, dir?: string, env?: Record<string, string>): Promise<RunningPulseGate>;
  /** Stops it, keeps its CPU profile summary (with --cpu-prof) and removes its files. */
  finishPulseGate(pg: RunningPulseGate, label: string): Promise<void>;
  /** A BullMQ target on a queue of its own. */
  bullTarget(label: string): Extract<Target, { kind: 'bullmq' }>;
}

export interface Row {
  metric: string;
  pulsegate: string;
  reference: string;
  ratio: string;
  floor: string;
  verdict: 'pass' | 'MISS' | '';
}

export interface Scenario {
  name: string;
  title: string;
  /** One line on what is measured, for the legend under the table. */
  what: string;
  /** What the reference column holds. */
  reference: string;
  run(ctx: Ctx, round: number): Promise<Figures>;
  rows(median: Figures, rounds: Figures[]): Row[];
}

// ── formatting ──────────────────────────────────────────────────────────────────────────────────
export function fmt(v: number | null | undefined, digits = 0, unit = ''): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const s = v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return unit ? `${s} ${unit}` : s;
}

/**
 * The figures of a burst of creates and its deliveries: deliveries/s from the first request to the
 * last delivery, creates/s, creation-to-delivery latency, and the counts.
 */
export function deliveryFigures(c: CreateResult, s: ReceiverStats): Figures {
  return {
    per_s: s.count / ((s.last_at - c.started_at) / 1000),
    create_per_s: c.ok / ((c.finished_at - c.started_at) / 1000),
    p50_ms: s.latency_ms.p50,
    p99_ms: s.latency_ms.p99,
    delivered: s.count,
    duplicates: s.duplicates,
  };
}

export function ratio(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '–' : `${v.toFixed(2)}x`;
}

/** pass when v >= min (v null: no verdict). */
export function atLeast(v: number | null | undefined, min: number): Row['verdict'] {
  if (v === null || v === undefined || !Number.isFinite(v)) return '';
  return v >= min ? 'pass' : 'MISS';
}

export function atMost(v: number | null | undefined, max: number): Row['verdict'] {
  if (v === null || v === undefined || !Number.isFinite(v)) return '';
  return v <= max ? 'pass' : 'MISS';
}

/** The timeout for waiting on n deliveries: generous, but bounded. */
export function deliveryTimeoutMs(n: number): number {
  return 60_000 + n * 5;
}
