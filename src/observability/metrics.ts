// Prometheus metrics. They observe engine events and read gauges on scrape; the engine never
// calls prom-client itself.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EngineStats } from '../engine/engine.js';
import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';
import type { EventBus } from './events.js';

export interface MetricsSources {
  events: EventBus;
  engineStats: () => EngineStats;
  store: Store;
  clock: Clock;
}

export function createMetrics(src: MetricsSources) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  new Gauge({
    name: 'pulsegate_queue_depth',
    help: 'Jobs waiting in the memory queue (queued plus parked for a rate-limit token)',
    registers: [registry],
    collect() {
      this.set(src.engineStats().queued);
    },
  });
  new Gauge({
    name: 'pulsegate_jobs_in_flight',
    help: 'Delivery attempts in flight',
    registers: [registry],
    collect() {
      this.set(src.engineStats().inFlight);
    },
  });
  const created = new Counter({ name: 'pulsegate_jobs_created_total', help: 'Jobs created', registers: [registry] });
  const completed = new Counter({
    name: 'pulsegate_jobs_completed_total',
    help: 'Jobs that reached a final status after an attempt',
    labelNames: ['status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'pulsegate_delivery_duration_seconds',
    help: 'Duration of delivery attempts',
    labelNames: ['outcome'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });

  src.events.on((e) => {
    switch (e.type) {
      case 'job.created':
        created.inc();
        break;
      case 'attempt.finished':
        duration.observe({ outcome: e.outcome }, e.duration_ms / 1000);
        if (e.next_status === 'success' || e.next_status === 'failed') completed.inc({ status: e.next_status });
        break;
    }
  });

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
  };
}
