// Prometheus metrics. They observe engine events (counters, histograms) and read gauges when
// scraped; the engine never calls prom-client itself. Every service instance has its own Registry
// (never prom-client's global one), so two services in one process never mix their numbers.
//
// Cost rules:
// - Per event: one or two label-hash lookups in prom-client (well under a microsecond each); the
//   label objects for bounded label sets are built once here, not per event.
// - Labels stay low-cardinality: never a job id or a URL. A `tenant` label exists only with
//   `tenantLabels: true`, and only on counters (a histogram per tenant would multiply every bucket).
// - pulsegate_jobs_by_status counts rows in the store, which costs a scan over millions of rows: it
//   is refreshed at most once per `statusCountsMaxAgeMs` (default 5 s), only when scraped, and the
//   cached value is served in between, whatever the number of scrapers.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type LabelValues } from 'prom-client';
import type { Clock } from '../clock.js';
import { ATTEMPT_OUTCOMES, ERROR_KINDS, type AttemptOutcome, type ErrorKind } from '../domain/attempt.js';
import { JOB_STATUSES, type JobStatus } from '../domain/job.js';
import type { DestinationState } from '../engine/destinations.js';
import type { EngineStats } from '../engine/engine.js';
import type { Store } from '../store/store.js';
import { VERSION } from '../version.js';
import type { EventBus } from './events.js';

export interface MetricsSources {
  events: EventBus;
  engineStats: () => EngineStats;
  /** The engine's destination lanes, read when scraped. */
  destinations?: () => DestinationState[] | Promise<DestinationState[]>;
  store: Pick<Store, 'countByStatus'>;
  clock: Clock;
}

export interface MetricsOptions extends MetricsSources {
  /**
   * Adds a `tenant` label to the job and attempt counters. Off by default: turn it on only when the
   * number of tenants is bounded (tens, not thousands), since each tenant multiplies those series.
   */
  tenantLabels?: boolean;
  /**
   * Tenants whose own signing secrets all expire, with when the last one does (epoch ms): a gauge per
   * such tenant (bounded by the configuration, not by traffic) to alert on before it happens.
   */
  signingExpiries?: ReadonlyMap<string, number>;
  /**
   * Adds per-destination gauges (in flight, waiting) labelled tenant and origin, for the
   * DESTINATION_LABELS_TOP busiest destinations only, so the series stay bounded. Off by default.
   */
  destinationLabels?: boolean;
  /** How old the cached store counts (pulsegate_jobs_by_status) may get before a scrape refreshes them. */
  statusCountsMaxAgeMs?: number;
}

export interface Metrics {
  registry: Registry;
  contentType: string;
  render(): Promise<string>;
  /** Stops observing events (the registry keeps its last values). */
  close(): void;
}

export const DEFAULT_STATUS_COUNTS_MAX_AGE_MS = 5000;

const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const LAG_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];
const STORE_WRITE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** The store operations the engine and intake report (store.write / store.error `op`), shown at 0 from the start. */
const KNOWN_STORE_OPS = ['create', 'claim', 'release', 'poll', 'renew', 'lanes', 'engine.write', 'prune', 'count_by_status'];

/** With destination labels on, the per-destination gauges cover this many of the busiest. */
export const DESTINATION_LABELS_TOP = 20;

/** error_kind label value for an attempt without an error. */
const NO_ERROR = 'none';

export function createMetrics(o: MetricsOptions): Metrics {
  const registry = new Registry();
  const tenants = o.tenantLabels === true;
  const withTenant = (names: string[]): string[] => (tenants ? [...names, 'tenant'] : names);
  collectDefaultMetrics({ register: registry });

  new Gauge({
    name: 'pulsegate_build_info',
    help: 'Always 1; the version label says which PulseGate is running',
    labelNames: ['version'],
    registers: [registry],
  }).set({ version: VERSION }, 1);

  // ── the memory queue and the workers, read from the engine when scraped ──
  const engineGauge = (name: string, help: string, read: (s: EngineStats) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read(o.engineStats()));
      },
    });
  engineGauge('pulsegate_queue_depth', 'Jobs waiting in the memory queue (queued, parked for a rate-limit token, or held until their run_at)', (s) => s.queued);
  engineGauge('pulsegate_queue_ahead', 'Jobs in the memory queue held until their run_at (created here, due within 2 s)', (s) => s.ahead);
  engineGauge('pulsegate_queue_parked', 'Jobs in the memory queue waiting in their destination lane (for a worker, an in-flight slot, a rate-limit token or a circuit)', (s) => s.parked);
  engineGauge('pulsegate_queue_capacity', 'Most jobs the memory queue holds (QUEUE_CAPACITY)', (s) => s.capacity);
  engineGauge('pulsegate_jobs_in_flight', 'Delivery attempts in flight', (s) => s.inFlight);
  engineGauge('pulsegate_worker_concurrency', 'Most attempts in flight at once (WORKER_CONCURRENCY)', (s) => s.concurrency);
  engineGauge(
    'pulsegate_destinations_held',
    'Destinations this instance holds under a lease and alone delivers (PostgreSQL; 0 on SQLite, where every destination is the one process\'s)',
    (s) => s.destinationsHeld ?? 0,
  );
  new Gauge({
    name: 'pulsegate_engine_thread_heap_bytes',
    help: "The engine thread's V8 heap (ENGINE_THREAD=true; nodejs_heap_* are the main thread's): committed, used, and young (the young generation's committed part)",
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      const heap = o.engineStats().heap;
      if (!heap) return;
      this.set({ kind: 'committed' }, heap.committed);
      this.set({ kind: 'used' }, heap.used);
      this.set({ kind: 'young' }, heap.young);
    },
  });
  const lanesLost = new Counter({
    name: 'pulsegate_destination_leases_lost_total',
    help: 'Destinations this instance held under a lease and lost (another instance holds it, or the lease ran out unrenewed); their waiting jobs went back to the store',
    registers: [registry],
  });

  if (o.signingExpiries && o.signingExpiries.size > 0) {
    const expiries = o.signingExpiries;
    new Gauge({
      name: 'pulsegate_signing_secret_expiry_timestamp_seconds',
      help: "When a tenant's last own signing secret expires (unix s); after it the tenant is signed with SIGNING_SECRET",
      labelNames: ['tenant'],
      registers: [registry],
      collect() {
        for (const [tenant, at] of expiries) this.set({ tenant }, Math.floor(at / 1000));
      },
    });
  }

  // ── destinations (lanes): circuits, and per destination only when asked for ──
  const destinations = o.destinations ?? (() => []);
  new Gauge({
    name: 'pulsegate_circuits_open',
    help: 'Destination lanes whose circuit is not closed (open or half_open): their jobs wait without attempts',
    registers: [registry],
    async collect() {
      this.set((await destinations()).filter((d) => d.circuit !== 'closed').length);
    },
  });
  const circuitChanges = new Counter({
    name: 'pulsegate_circuit_transitions_total',
    help: 'Circuit state changes of destinations, by the state entered',
    labelNames: ['to'],
    registers: [registry],
  });
  for (const to of ['open', 'half_open', 'closed']) circuitChanges.inc({ to }, 0);
  if (o.destinationLabels === true) {
    const top = async () =>
      (await destinations())
        .sort((a, b) => b.in_flight + b.waiting - (a.in_flight + a.waiting))
        .slice(0, DESTINATION_LABELS_TOP);
    const perDestination = (name: string, help: string, read: (d: DestinationState) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['tenant', 'origin'],
        registers: [registry],
        async collect() {
          const busiest = await top();
          this.reset();
          for (const d of busiest) this.set({ tenant: d.tenant_id, origin: d.origin }, read(d));
        },
      });
    perDestination('pulsegate_destination_in_flight', `Attempts in flight per destination (the ${DESTINATION_LABELS_TOP} busiest)`, (d) => d.in_flight);
    perDestination('pulsegate_destination_waiting', `Jobs waiting in memory per destination (the ${DESTINATION_LABELS_TOP} busiest)`, (d) => d.waiting);
  }

  // ── jobs in the store, by status: cached (see the top of this file) ──
  const statusCounts = cachedStatusCounts(o, o.statusCountsMaxAgeMs ?? DEFAULT_STATUS_COUNTS_MAX_AGE_MS);
  new Gauge({
    name: 'pulsegate_jobs_by_status',
    help: `Jobs in the store per status (failed is the dead-letter queue); refreshed at most every ${
      (o.statusCountsMaxAgeMs ?? DEFAULT_STATUS_COUNTS_MAX_AGE_MS) / 1000
    } s`,
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      const counts = await statusCounts();
      if (!counts) return;
      for (const status of JOB_STATUSES) this.set({ status }, counts[status]);
    },
  });

  // ── jobs and attempts ──
  const created = new Counter({
    name: 'pulsegate_jobs_created_total',
    help: 'Jobs created (replays and deduplicated requests are not new jobs)',
    labelNames: withTenant([]),
    registers: [registry],
  });
  const completed = new Counter({
    name: 'pulsegate_jobs_completed_total',
    help: 'Jobs that reached a final status after an attempt: success, or failed (into the dead-letter queue)',
    labelNames: withTenant(['status']),
    registers: [registry],
  });
  const attempts = new Counter({
    name: 'pulsegate_attempts_total',
    help: 'Delivery attempts by outcome and error kind (error_kind="none" for a success)',
    labelNames: withTenant(['outcome', 'error_kind']),
    registers: [registry],
  });
  const retries = new Counter({
    name: 'pulsegate_retries_scheduled_total',
    help: 'Failed attempts after which the job was scheduled to be tried again',
    labelNames: withTenant([]),
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'pulsegate_delivery_duration_seconds',
    help: 'Duration of delivery attempts, from sending the request to classifying the answer',
    labelNames: ['outcome'],
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const lag = new Histogram({
    name: 'pulsegate_scheduler_lag_seconds',
    help: 'How late attempts start after their job became due (includes waits for a worker and for a rate-limit token)',
    buckets: LAG_BUCKETS,
    registers: [registry],
  });

  // ── intake ──
  const replays = new Counter({
    name: 'pulsegate_idempotent_replays_total',
    help: 'Job creations answered with the original job because the Idempotency-Key was seen before',
    labelNames: withTenant([]),
    registers: [registry],
  });
  const dedupeHits = new Counter({
    name: 'pulsegate_dedupe_hits_total',
    help: 'Job creations answered with an earlier job inside the dedupe window, by where the match was found',
    labelNames: withTenant(['source']),
    registers: [registry],
  });

  // ── rate limiting ──
  const rateWaits = new Counter({
    name: 'pulsegate_ratelimit_waits_total',
    help: 'Jobs that had to wait for a rate-limit token (no attempt is spent waiting)',
    labelNames: withTenant([]),
    registers: [registry],
  });
  const rateReleased = new Counter({
    name: 'pulsegate_ratelimit_released_total',
    help: 'Rate-limit waits too long to hold in memory: the job went back to the store until its turn',
    labelNames: withTenant([]),
    registers: [registry],
  });

  // ── the store ──
  const writeDuration = new Histogram({
    name: 'pulsegate_store_write_duration_seconds',
    help: 'Duration of store write transactions (group commits), by operation',
    labelNames: ['op'],
    buckets: STORE_WRITE_BUCKETS,
    registers: [registry],
  });
  const writeRows = new Counter({
    name: 'pulsegate_store_write_rows_total',
    help: 'Rows written by store write transactions, by operation (rows / transactions = batch size)',
    labelNames: ['op'],
    registers: [registry],
  });
  const storeErrors = new Counter({
    name: 'pulsegate_store_errors_total',
    help: 'Store operations that failed, by operation',
    labelNames: ['op'],
    registers: [registry],
  });
  const leasesRecovered = new Counter({
    name: 'pulsegate_leases_recovered_total',
    help: 'Held jobs freed because their dispatcher died (or at start): they are delivered again',
    registers: [registry],
  });
  const pruned = new Counter({
    name: 'pulsegate_jobs_pruned_total',
    help: 'Terminal jobs deleted after the retention period',
    registers: [registry],
  });

  const scheduleTicks = new Counter({
    name: 'pulsegate_schedule_ticks_total',
    help: 'Schedule ticks handled, by outcome: created (a job), replayed (an earlier round made it), deduplicated, refused (a rule refused the job)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const scheduleSkipped = new Counter({
    name: 'pulsegate_schedule_ticks_skipped_total',
    help: 'Due schedule ticks not created: missed beyond the catch-up limit, or skipped by the schedule',
    registers: [registry],
  });
  for (const outcome of ['created', 'replayed', 'deduplicated', 'refused']) scheduleTicks.inc({ outcome }, 0);

  // Label objects for the bounded label sets, built once. Without tenant labels, every labelled
  // series is initialised to 0 so rate() sees its first increment.
  const completedLabels = { success: { status: 'success' }, failed: { status: 'failed' } };
  const attemptLabels = new Map<string, { outcome: AttemptOutcome; error_kind: string }>();
  for (const outcome of ATTEMPT_OUTCOMES) {
    const kinds: readonly string[] = outcome === 'success' ? [NO_ERROR] : ERROR_KINDS;
    for (const error_kind of kinds) attemptLabels.set(attemptKey(outcome, error_kind), { outcome, error_kind });
  }
  const outcomeLabels = Object.fromEntries(ATTEMPT_OUTCOMES.map((outcome) => [outcome, { outcome }])) as Record<
    AttemptOutcome,
    { outcome: AttemptOutcome }
  >;
  const sourceLabels = { cache: { source: 'cache' }, store: { source: 'store' } };
  const opLabels = new Map<string, { op: string }>();
  const opLabel = (op: string) => {
    let l = opLabels.get(op);
    if (!l) opLabels.set(op, (l = { op }));
    return l;
  };
  if (!tenants) {
    completed.inc(completedLabels.success, 0);
    completed.inc(completedLabels.failed, 0);
    for (const l of attemptLabels.values()) attempts.inc(l, 0);
    dedupeHits.inc(sourceLabels.cache, 0);
    dedupeHits.inc(sourceLabels.store, 0);
  }
  for (const op of KNOWN_STORE_OPS) storeErrors.inc(opLabel(op), 0);

  // Without tenant labels no object is built per event; with them, one small one.
  const inc = (c: Counter, labels: LabelValues<string> | null, tenant: string): void => {
    if (tenants) c.inc({ ...labels, tenant });
    else if (labels) c.inc(labels);
    else c.inc();
  };

  const unsubscribe = o.events.on((e) => {
    switch (e.type) {
      case 'job.created':
        inc(created, null, e.tenant_id);
        break;
      case 'job.idempotent_replay':
        inc(replays, null, e.tenant_id);
        break;
      case 'job.deduplicated':
        inc(dedupeHits, sourceLabels[e.source], e.tenant_id);
        break;
      case 'attempt.started':
        lag.observe(e.lateness_ms / 1000);
        break;
      case 'attempt.finished': {
        const kind = e.error_kind ?? NO_ERROR;
        const labels = attemptLabels.get(attemptKey(e.outcome, kind)) ?? { outcome: e.outcome, error_kind: kind };
        inc(attempts, labels, e.tenant_id);
        duration.observe(outcomeLabels[e.outcome], e.duration_ms / 1000);
        if (e.next_status === 'retrying') inc(retries, null, e.tenant_id);
        else if (e.next_status === 'success' || e.next_status === 'failed') inc(completed, completedLabels[e.next_status], e.tenant_id);
        break;
      }
      case 'lane.lost':
        lanesLost.inc();
        break;
      case 'circuit.changed':
        circuitChanges.inc({ to: e.to });
        break;
      case 'ratelimit.wait':
        inc(rateWaits, null, e.tenant_id);
        if (e.released) inc(rateReleased, null, e.tenant_id);
        break;
      case 'store.write': {
        const l = opLabel(e.op);
        writeDuration.observe(l, e.duration_ms / 1000);
        writeRows.inc(l, e.count);
        break;
      }
      case 'store.error':
        storeErrors.inc(opLabel(e.op));
        break;
      case 'leases.recovered':
        leasesRecovered.inc(e.count);
        break;
      case 'jobs.pruned':
        pruned.inc(e.count);
        break;
      case 'schedule.tick':
        scheduleTicks.inc({ outcome: e.outcome });
        break;
      case 'schedule.skipped':
        scheduleSkipped.inc(e.count);
        break;
      case 'job.status':
        // carried by attempt.finished (next_status); counting it too would count twice
        break;
    }
  });

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    close: unsubscribe,
  };
}

function attemptKey(outcome: AttemptOutcome, kind: ErrorKind | string): string {
  return `${outcome}\u0000${kind}`;
}

/**
 * The store's per-status counts, refreshed at most once per maxAgeMs (measured from the end of the
 * last query, so a slow query never runs back to back). Concurrent scrapes share one query; a failed
 * query keeps the last counts, is counted as a store error, and is not retried before maxAgeMs.
 */
function cachedStatusCounts(
  o: Pick<MetricsSources, 'store' | 'clock' | 'events'>,
  maxAgeMs: number,
): () => Promise<Record<JobStatus, number> | null> {
  let counts: Record<JobStatus, number> | null = null;
  let refreshedAt = Number.NEGATIVE_INFINITY;
  let pending: Promise<void> | null = null;
  return async () => {
    if (!pending && o.clock.now() - refreshedAt >= maxAgeMs) {
      pending = o.store
        .countByStatus()
        .then(
          (c) => {
            counts = c;
          },
          (err: unknown) => {
            o.events.emit({ type: 'store.error', op: 'count_by_status', error: err instanceof Error ? err.message : String(err) });
          },
        )
        .finally(() => {
          refreshedAt = o.clock.now();
          pending = null;
        });
    }
    if (pending) await pending;
    return counts;
  };
}
