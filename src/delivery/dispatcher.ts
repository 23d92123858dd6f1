// The dispatcher: sends one webhook over HTTP and reports what happened as a DeliveryResult value.
// deliver() never throws. One undici Agent holds keep-alive pools for every destination origin.
//
// One delivery, in order: check the URL with the SSRF guard (literal IPs never reach the resolver) →
// sign → send (the guard's lookup vets every resolved address at connect time) → read at most 4 KiB
// of the answer → classify. The destination's timeout_ms bounds the whole exchange.

import { StringDecoder } from 'node:string_decoder';
import type { Clock } from '../clock.js';
import type { DeliveryResult } from '../domain/attempt.js';
import { isSendableHeader } from '../domain/headers.js';
import type { Destination } from '../domain/job.js';
import { classifyError, classifyStatus } from './classify.js';
import type { Signer } from './signing.js';
import type { DestinationGuard } from './ssrf.js';
import { Agent, request } from './undici-request.js';

export interface DeliveryRequest {
  job_id: string;
  tenant_id: string;
  destination: Destination;
  payload_json: string;
  /** webhook-timestamp, unix seconds, from the caller's clock. */
  timestamp_s: number;
  /** W3C trace context of this attempt (observability/tracing.ts); absent for a job without a trace. */
  traceparent?: string;
  tracestate?: string | null;
}

export interface Dispatcher {
  deliver(req: DeliveryRequest): Promise<DeliveryResult>;
  /** Waits for in-flight deliveries, then closes every pooled connection. */
  close(): Promise<void>;
}

export interface DispatcherOptions {
  userAgent: string;
  guard: DestinationGuard;
  signer?: Signer | null;
  /** Keep-alive connections per destination origin. */
  connections?: number;
  /** For Retry-After dates and secret expiry; the system clock by default. */
  clock?: Pick<Clock, 'now'>;
}

/** How much of a response body is kept for the attempt log. */
export const MAX_RESPONSE_BODY_BYTES = 4096;
const DEFAULT_CONNECTIONS = 64;
// An upper bound for the TCP/TLS handshake; the per-delivery timer usually fires first.
const CONNECT_TIMEOUT_MS = 30_000;

export function createDispatcher(opts: DispatcherOptions): Dispatcher {
  const { guard, userAgent } = opts;
  const signer = opts.signer ?? null;
  const clock = opts.clock;
  const now = clock ? () => clock.now() : () => Date.now();
  const agent = new Agent({
    connections: opts.connections ?? DEFAULT_CONNECTIONS,
    pipelining: 1,
    connect: { lookup: guard.lookup, timeout: CONNECT_TIMEOUT_MS },
  });

  function headersFor(req: DeliveryRequest): Record<string, string> {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': userAgent };
    for (const [name, value] of Object.entries(req.destination.headers)) {
      // refused at creation (schemas.ts); skipped here too for rows written before that rule
      if (isSendableHeader(name, value)) headers[name.toLowerCase()] = value;
    }
    // the job's trace wins over a traceparent the job set among its own headers
    if (req.traceparent !== undefined) {
      headers.traceparent = req.traceparent;
      if (req.tracestate) headers.tracestate = req.tracestate;
      else delete headers.tracestate;
    }
    headers['webhook-id'] = req.job_id;
    headers['webhook-timestamp'] = String(req.timestamp_s);
    const signature = signer?.sign(req.tenant_id, req.job_id, req.timestamp_s, req.payload_json, now()) ?? null;
    if (signature !== null) headers['webhook-signature'] = signature;
    return headers;
  }

  async function send(req: DeliveryRequest): Promise<DeliveryResult> {
    const { url, method } = req.destination;
    const timeoutMs = Math.max(1, req.destination.timeout_ms);
    const check = guard.checkUrl(url);
    if (!check.ok) {
      return { outcome: 'permanent_error', error_kind: 'blocked', status_code: null, error: `destination refused: ${check.reason}`, response_body: null };
    }

    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error(`delivery timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    let status: number | null = null;
    const decoder = new StringDecoder('utf8');
    let text = '';
    try {
      const res = await request(url, {
        dispatcher: agent,
        method,
        headers: headersFor(req),
        body: Buffer.from(req.payload_json, 'utf8'),
        signal: controller.signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      status = res.statusCode;
      let read = 0;
      // Breaking out of the loop destroys the rest of the body unread (and the connection with it).
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        const take = Math.min(chunk.length, MAX_RESPONSE_BODY_BYTES - read);
        text += decoder.write(chunk.subarray(0, take));
        read += take;
        if (read >= MAX_RESPONSE_BODY_BYTES) break;
      }
      // A multi-byte character cut at the limit is dropped (decoder.end() is never called), not mangled.
      const retryAfter = res.headers['retry-after'];
      return classifyStatus({
        status,
        retryAfter: (Array.isArray(retryAfter) ? retryAfter[0] : retryAfter) ?? null,
        body: text === '' ? null : text,
        now: now(),
      });
    } catch (err) {
      return classifyError(err, { timedOut, timeoutMs, status, body: text === '' ? null : text });
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    async deliver(req) {
      try {
        return await send(req);
      } catch (err) {
        // send() catches what the network throws; this is for anything else (a signer bug, say).
        return classifyError(err, { timedOut: false, timeoutMs: req.destination.timeout_ms, status: null, body: null });
      }
    },
    close: () => agent.close(),
  };
}
