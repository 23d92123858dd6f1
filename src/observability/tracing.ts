// Trace propagation (W3C Trace Context) and, when an OTLP endpoint is configured, spans.
//
// A job's trace, one span per step, every attempt a child of the job's create span:
//
//   client span (traceparent on POST /v1/jobs)
//     └─ job create            the request that stored the job; its context is stored with the job
//          ├─ job attempt 1    the receiver's traceparent names this span as its parent
//          ├─ job retry wait   from attempt 1's end to attempt 2's start
//          └─ job attempt 2
//
// Two implementations behind one interface:
// - propagation only (no OTEL_EXPORTER_OTLP_ENDPOINT): ids only, nothing recorded, the OpenTelemetry
//   SDK never imported. A job created with a traceparent gets a new create span id; each attempt a
//   new span id sent to the receiver. A job created without one has no trace.
// - export (otel.ts, imported only when an endpoint is set): the same ids come from SDK spans that
//   are exported over OTLP/HTTP; a job created without a traceparent starts a trace of its own.
// Span times are the steps' own times (the Clock's at the start, the attempt's measured duration),
// not when the write batcher got to recording them.

import type { DeliveryResult } from '../domain/attempt.js';
import type { CreateOutcome, Job } from '../domain/job.js';
import { formatTraceparent, newSpanId, type IncomingTrace } from '../domain/trace-context.js';
import type { Config } from '../config.js';

/** The create span, open while the job is written. */
export interface CreateSpan {
  /** What the job stores: the create span's traceparent (attempts are its children). */
  readonly traceparent: string;
  readonly tracestate: string | null;
  /** outcome null: the write failed. */
  end(outcome: CreateOutcome | null, endTime: number): void;
}

/** One attempt's span, open while the request is in flight. */
export interface AttemptSpan {
  /** What the receiver gets: the job's trace id, this attempt's span id. */
  readonly traceparent: string;
  readonly tracestate: string | null;
  end(result: DeliveryResult, endTime: number): void;
}

/** What an attempt span needs of its job. */
export type TracedJob = Pick<Job, 'id' | 'tenant_id' | 'destination' | 'tracestate'>;

export interface Tracing {
  /** Whether spans are recorded and exported (the SDK is loaded). */
  readonly exporting: boolean;
  /** Null: the job has no trace (no valid traceparent came, and nothing is exported). */
  startCreate(incoming: IncomingTrace | null, startTime: number): CreateSpan | null;
  /** Only for a job with a trace (`traceparent`: the job's). `attempt` > 1 also records the retry wait before it. */
  startAttempt(job: TracedJob, traceparent: string, attempt: number, startTime: number): AttemptSpan;
  /** Exports what is buffered, then stops. */
  shutdown(): Promise<void>;
}

const noop = (): void => {};

/** Ids only: what runs when no OTLP endpoint is set. */
export function propagationOnly(): Tracing {
  return {
    exporting: false,
    startCreate(incoming) {
      if (incoming === null) return null;
      const traceparent = formatTraceparent({ ...incoming.parent, span_id: newSpanId() });
      return { traceparent, tracestate: incoming.tracestate, end: noop };
    },
    startAttempt(job, tp) {
      // the stored traceparent is PulseGate's own, well formed: keep its trace id and flags
      return { traceparent: `${tp.slice(0, 36)}${newSpanId()}${tp.slice(52)}`, tracestate: job.tracestate ?? null, end: noop };
    },
    shutdown: async () => {},
  };
}

/** Where spans go, from the standard variables; null when they go nowhere. */
export function tracesUrl(config: Pick<Config, 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' | 'OTEL_SDK_DISABLED'>): string | null {
  if (config.OTEL_SDK_DISABLED) return null;
  if (config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const base = config.OTEL_EXPORTER_OTLP_ENDPOINT;
  return base ? `${base.replace(/\/+$/, '')}/v1/traces` : null;
}

export interface TracingDeps {
  /** When the job's latest recorded attempt finished (the start of a retry wait), or null. */
  lastAttemptEnd(jobId: string): Promise<number | null>;
  onError?(err: Error): void;
}

/** The tracing a Config asks for. The SDK is imported only when spans are exported. */
export async function createTracing(config: Config, deps: TracingDeps): Promise<Tracing> {
  const url = tracesUrl(config);
  if (url === null) return propagationOnly();
  const { otelTracing } = await import('./otel.js');
  return otelTracing({ url, serviceName: config.OTEL_SERVICE_NAME, ...deps });
}
