// JSON logs to stdout with pino, and the lines PulseGate writes about jobs, from engine events.
//
// Two guards keep secrets and payloads out of every line:
// - the event lines below are built field by field from the events (which carry no payload, no
//   headers and no URL), never by spreading an object;
// - createLogger redacts the places any other log call could put a credential or a payload.
//   The paths are exact, not wildcards: pino's wildcard redaction costs about as much as writing
//   the line itself, and these run on every line.
//
// Levels (LOG_LEVEL picks the threshold):
//   info   attempt.finished (one line per attempt: it carries the job's new status), jobs.pruned
//   warn   an attempt that moved its job to failed (the dead-letter queue); leases.recovered; a
//          destination's circuit opening (one line per circuit change: info when it half-opens or closes)
//   error  store.error
//   debug  job.created, job.idempotent_replay, job.deduplicated, attempt.started, ratelimit.wait,
//          job.status changes other than an attempt's (an attempt's is already on its line)
//   trace  store.write
// Every line about a job carries its W3C trace id as trace_id when the job has a trace (absent when
// not: pino drops undefined fields), so a trace found in a tracing backend leads to its log lines.
// job.created is at debug: at 10k jobs/s it would double the volume of info lines, and every job
// that runs gets its attempt line anyway. LOG_LEVEL=debug shows the whole life of each job.

import pino, { type Logger } from 'pino';
import type { EventBus } from './events.js';

export const REDACTED_PATHS: readonly string[] = [
  // payloads, wherever a job, an attempt or a request body is logged whole
  'payload',
  'payload_json',
  'body',
  'response_body',
  'job.payload',
  'job.payload_json',
  'job.response_body',
  'attempt.response_body',
  'req.body',
  'request.body',
  // credentials in headers: ours (API keys) and the ones jobs carry to their destinations
  'authorization',
  'headers.authorization',
  'headers.cookie',
  'headers["x-api-key"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'req.headers["idempotency-key"]',
  'request.headers.authorization',
  'res.headers["set-cookie"]',
  'destination.headers',
  'job.destination.headers',
  // signing secrets and keys
  'secret',
  'signing_secret',
  'api_key',
  'token',
  'password',
  'config.SIGNING_SECRET',
  'config.API_KEYS',
];

/**
 * A JSON logger. Without a destination it writes to stdout through an asynchronous buffer: a write
 * to a slow pipe or terminal never stalls deliveries, and what is buffered is flushed on a normal
 * exit (a SIGKILL may lose the last few lines, never a job). Tests pass a stream to read lines back.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'pulsegate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** One log line per job state change and per attempt, from engine events. Returns an unsubscriber. */
export function attachEventLogger(events: EventBus, logger: Logger): () => void {
  return events.on((e) => {
    switch (e.type) {
      case 'attempt.finished': {
        const line = {
          event: e.type,
          job_id: e.job_id,
          tenant_id: e.tenant_id,
          attempt: e.attempt,
          outcome: e.outcome,
          error_kind: e.error_kind,
          status_code: e.status_code,
          duration_ms: Math.round(e.duration_ms),
          status: e.next_status,
          next_attempt_at: e.next_attempt_at === null ? null : new Date(e.next_attempt_at).toISOString(),
          trace_id: e.trace_id,
        };
        if (e.next_status === 'failed') logger.warn(line, 'attempt failed; job moved to the dead-letter queue');
        else logger.info(line, 'attempt finished');
        break;
      }
      case 'store.error':
        logger.error({ event: e.type, op: e.op, error: e.error }, 'store error');
        break;
      case 'signing.expiring':
        logger.warn(
          { event: e.type, tenant_id: e.tenant_id, expires_at: new Date(e.expires_at).toISOString() },
          "every signing secret of this tenant expires soon; add a new one to TENANT_SIGNING_SECRETS, or its deliveries will be signed with SIGNING_SECRET, which its receiver may not know",
        );
        break;
      case 'signing.fallback':
        logger.warn(
          { event: e.type, tenant_id: e.tenant_id, expired_at: new Date(e.expires_at).toISOString() },
          "every signing secret of this tenant has expired; its deliveries are signed with SIGNING_SECRET until TENANT_SIGNING_SECRETS gives it a current one",
        );
        break;
      case 'leases.recovered':
        logger.warn({ event: e.type, count: e.count }, 'freed jobs held by a dispatcher that stopped; they will be delivered again');
        break;
      case 'jobs.pruned':
        logger.info({ event: e.type, count: e.count }, 'pruned jobs past retention');
        break;
      case 'schedule.changed':
        logger.info({ event: e.type, schedule_id: e.schedule_id, tenant_id: e.tenant_id, action: e.action }, `schedule ${e.action}`);
        break;
      case 'schedule.skipped':
        logger.info(
          { event: e.type, schedule_id: e.schedule_id, tenant_id: e.tenant_id, count: e.count, policy: e.policy },
          'schedule ticks missed while no instance ran were skipped',
        );
        break;
      case 'schedule.tick': {
        if (e.outcome === 'refused') {
          logger.warn(
            { event: e.type, schedule_id: e.schedule_id, tenant_id: e.tenant_id, tick_at: new Date(e.tick_at).toISOString(), reason: e.reason },
            'schedule tick refused: no job created for it',
          );
        } else if (logger.isLevelEnabled('debug')) {
          logger.debug(
            {
              event: e.type,
              schedule_id: e.schedule_id,
              tenant_id: e.tenant_id,
              tick_at: new Date(e.tick_at).toISOString(),
              late_ms: e.late_ms,
              job_id: e.job_id,
              outcome: e.outcome,
            },
            'schedule tick',
          );
        }
        break;
      }
      // the hot, detailed ones: skip building the object unless the level is on
      case 'job.created':
        if (logger.isLevelEnabled('debug')) {
          logger.debug(
            { event: e.type, job_id: e.job_id, tenant_id: e.tenant_id, status: e.status, run_at: new Date(e.run_at).toISOString(), trace_id: e.trace_id },
            'job created',
          );
        }
        break;
      case 'job.idempotent_replay':
        if (logger.isLevelEnabled('debug')) logger.debug({ event: e.type, job_id: e.job_id, tenant_id: e.tenant_id, trace_id: e.trace_id }, 'idempotent replay');
        break;
      case 'job.deduplicated':
        if (logger.isLevelEnabled('debug')) {
          logger.debug({ event: e.type, job_id: e.job_id, tenant_id: e.tenant_id, source: e.source, trace_id: e.trace_id }, 'duplicate job');
        }
        break;
      case 'attempt.started':
        if (logger.isLevelEnabled('debug')) {
          logger.debug(
            { event: e.type, job_id: e.job_id, tenant_id: e.tenant_id, attempt: e.attempt, lateness_ms: Math.round(e.lateness_ms), trace_id: e.trace_id },
            'attempt started',
          );
        }
        break;
      case 'job.status':
        // running → X is on the attempt's line already; the rest (cancel, retry) are operator actions
        if (e.from !== 'running') {
          logger.info(
            { event: e.type, job_id: e.job_id, tenant_id: e.tenant_id, from: e.from, status: e.to, reason: e.reason, trace_id: e.trace_id },
            'job status changed',
          );
        }
        break;
      case 'circuit.changed': {
        const fields = {
          event: e.type,
          tenant_id: e.tenant_id,
          origin: e.origin,
          from: e.from,
          to: e.to,
          consecutive_failures: e.failures,
          probe_at: e.probe_at === null ? null : new Date(e.probe_at).toISOString(),
          last_error: e.last_error,
        };
        if (e.to === 'open') logger.warn(fields, 'circuit opened: jobs to this destination wait, without attempts, until a probe succeeds');
        else if (e.to === 'half_open') logger.info(fields, 'circuit half-open: one probe attempt goes out');
        else logger.info(fields, 'circuit closed: jobs to this destination flow again');
        break;
      }
      case 'lane.lost':
        logger.warn(
          { event: e.type, tenant_id: e.tenant_id, origin: e.origin, released: e.released },
          'destination lease lost: another instance delivers this destination now (or the database was unreachable for a lease)',
        );
        break;
      case 'ratelimit.wait':
        if (logger.isLevelEnabled('debug')) {
          logger.debug(
            { event: e.type, tenant_id: e.tenant_id, wait_ms: Math.round(e.wait_ms), released: e.released },
            e.released ? 'rate limited: job back to the store until its turn' : 'rate limited: job waits for a token',
          );
        }
        break;
      case 'store.write':
        if (logger.isLevelEnabled('trace')) {
          logger.trace({ event: e.type, op: e.op, count: e.count, duration_ms: Math.round(e.duration_ms * 10) / 10 }, 'store write');
        }
        break;
    }
  });
}
