// The exporting Tracing: spans made with the OpenTelemetry SDK and sent over OTLP/HTTP (JSON) in
// batches. Imported only by createTracing (tracing.ts) when an endpoint is configured, so a service
// without one never loads the SDK.
//
// Sampling is the SDK's (OTEL_TRACES_SAMPLER, default parent-based always-on): a client that sent an
// unsampled traceparent gets spans that are not recorded, with ids all the same, so the receiver
// still sees the trace continued. The exporter reads OTEL_EXPORTER_OTLP_HEADERS and _TIMEOUT itself.

import { createTraceState, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { formatTraceparent, parseTraceparent } from '../domain/trace-context.js';
import { VERSION } from '../version.js';
import type { AttemptSpan, CreateSpan, TracedJob, Tracing, TracingDeps } from './tracing.js';

export interface OtelOptions extends TracingDeps {
  /** The OTLP/HTTP traces URL (…/v1/traces). */
  url: string;
  serviceName: string;
}

/** Attribute names: OpenTelemetry's where one fits, pulsegate.* for the rest. */
export const ATTR = {
  jobId: 'pulsegate.job.id',
  tenantId: 'pulsegate.tenant.id',
  attempt: 'pulsegate.attempt.number',
  outcome: 'pulsegate.attempt.outcome',
  errorKind: 'pulsegate.attempt.error_kind',
  createOutcome: 'pulsegate.create.outcome',
  origin: 'pulsegate.destination.origin',
  method: 'http.request.method',
  statusCode: 'http.response.status_code',
  serverAddress: 'server.address',
} as const;

function parseUrl(url: string): URL | null {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

const originOf = (url: string): string => parseUrl(url)?.origin ?? 'invalid';

/** The create span's context, as the job stored it, for its attempts to be children of. */
function parentOf(job: TracedJob, traceparent: string): Context {
  const sc = parseTraceparent(traceparent);
  if (sc === null) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: sc.trace_id,
    spanId: sc.span_id,
    traceFlags: sc.flags,
    isRemote: true,
    ...(job.tracestate ? { traceState: createTraceState(job.tracestate) } : {}),
  });
}

function traceparentOf(span: Span): string {
  const sc = span.spanContext();
  return formatTraceparent({ trace_id: sc.traceId, span_id: sc.spanId, flags: sc.traceFlags });
}

export function otelTracing(o: OtelOptions): Tracing {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': o.serviceName, 'service.version': VERSION }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: o.url }))],
  });
  const tracer: Tracer = provider.getTracer('pulsegate', VERSION);

  function retryWait(job: TracedJob, attempt: number, parent: Context, endTime: number): void {
    o.lastAttemptEnd(job.id).then(
      (from) => {
        if (from === null || from > endTime) return;
        tracer
          .startSpan('job retry wait', { kind: SpanKind.INTERNAL, startTime: from, attributes: { [ATTR.jobId]: job.id, [ATTR.attempt]: attempt } }, parent)
          .end(endTime);
      },
      (err: unknown) => o.onError?.(err as Error),
    );
  }

  return {
    exporting: true,
    startCreate(incoming, startTime): CreateSpan {
      const parent = incoming === null
        ? ROOT_CONTEXT
        : trace.setSpanContext(ROOT_CONTEXT, {
            traceId: incoming.parent.trace_id,
            spanId: incoming.parent.span_id,
            traceFlags: incoming.parent.flags,
            isRemote: true,
            ...(incoming.tracestate ? { traceState: createTraceState(incoming.tracestate) } : {}),
          });
      const span = tracer.startSpan('job create', { kind: SpanKind.PRODUCER, startTime }, parent);
      return {
        traceparent: traceparentOf(span),
        tracestate: incoming?.tracestate ?? null,
        end(outcome, endTime) {
          if (outcome === null) {
            span.setStatus({ code: SpanStatusCode.ERROR, message: 'the job was not stored' });
          } else {
            span.setAttribute(ATTR.createOutcome, outcome.kind);
            if (outcome.kind === 'idempotency_conflict') {
              span.setAttribute(ATTR.jobId, outcome.job_id);
              span.setStatus({ code: SpanStatusCode.ERROR, message: 'idempotency key reused' });
            } else {
              const job = outcome.job;
              span.setAttributes({ [ATTR.jobId]: job.id, [ATTR.tenantId]: job.tenant_id, [ATTR.origin]: originOf(job.destination.url) });
            }
          }
          span.end(endTime);
        },
      };
    },
    startAttempt(job, traceparent, attempt, startTime): AttemptSpan {
      const parent = parentOf(job, traceparent);
      const url = parseUrl(job.destination.url);
      const span = tracer.startSpan(
        'job attempt',
        {
          kind: SpanKind.CLIENT,
          startTime,
          attributes: {
            [ATTR.jobId]: job.id,
            [ATTR.tenantId]: job.tenant_id,
            [ATTR.attempt]: attempt,
            [ATTR.origin]: url?.origin ?? 'invalid',
            [ATTR.method]: job.destination.method,
            [ATTR.serverAddress]: url?.hostname ?? '',
          },
        },
        parent,
      );
      if (attempt > 1) retryWait(job, attempt, parent, startTime);
      return {
        traceparent: traceparentOf(span),
        tracestate: job.tracestate ?? null,
        end(result, endTime) {
          span.setAttribute(ATTR.outcome, result.outcome);
          if (result.status_code !== null) span.setAttribute(ATTR.statusCode, result.status_code);
          if (result.outcome !== 'success') {
            span.setAttribute(ATTR.errorKind, result.error_kind);
            span.setStatus({ code: SpanStatusCode.ERROR, message: result.error });
          }
          span.end(endTime);
        },
      };
    },
    async shutdown() {
      await provider.shutdown();
    },
  };
}
