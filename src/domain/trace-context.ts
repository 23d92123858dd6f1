// W3C Trace Context (traceparent, tracestate): parsing what a client sends, and the ids of the spans
// PulseGate adds. Pure: only ids and strings, no OpenTelemetry SDK (propagation works without it).
//
// What a malformed header does, as the spec says: an invalid traceparent is ignored (and its
// tracestate with it); an invalid tracestate is dropped while a valid traceparent is kept. Neither
// refuses the request: tracing is never a reason not to take a job.

import { randomBytes } from 'node:crypto';

/** A span's place in a trace, as traceparent carries it. Ids are lowercase hex. */
export interface SpanContext {
  /** 32 hex digits, not all zero. */
  trace_id: string;
  /** 16 hex digits, not all zero. */
  span_id: string;
  /** The trace-flags byte; bit 0 is "sampled". */
  flags: number;
}

/** The context a client's request carried, when its traceparent was valid. */
export interface IncomingTrace {
  parent: SpanContext;
  tracestate: string | null;
}

const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;
const HEX2 = /^[0-9a-f]{2}$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/**
 * Parses a traceparent header. Version 00 must be exactly 55 characters; a later version may carry
 * more after a dash, which is ignored (the spec's forward compatibility); version ff is invalid.
 */
export function parseTraceparent(header: string | undefined | null): SpanContext | null {
  if (typeof header !== 'string') return null;
  const value = header.trim();
  if (value.length < 55) return null;
  const version = value.slice(0, 2);
  if (!HEX2.test(version) || version === 'ff') return null;
  if (version === '00' ? value.length !== 55 : value.length > 55 && value[55] !== '-') return null;
  if (value[2] !== '-' || value[35] !== '-' || value[52] !== '-') return null;
  const traceId = value.slice(3, 35);
  const spanId = value.slice(36, 52);
  const flags = value.slice(53, 55);
  if (!TRACE_ID.test(traceId) || traceId === ZERO_TRACE) return null;
  if (!SPAN_ID.test(spanId) || spanId === ZERO_SPAN) return null;
  if (!HEX2.test(flags)) return null;
  return { trace_id: traceId, span_id: spanId, flags: parseInt(flags, 16) };
}

export function formatTraceparent(c: SpanContext): string {
  return `00-${c.trace_id}-${c.span_id}-${(c.flags & 0xff).toString(16).padStart(2, '0')}`;
}

/** The longest tracestate PulseGate stores and forwards (the spec asks vendors to carry at least 512). */
export const MAX_TRACESTATE_CHARS = 512;
const MAX_TRACESTATE_MEMBERS = 32;
const KEY = /^(?:[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})$/;
// printable ASCII except ',' and '=', not ending in a space
const VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/**
 * A tracestate header normalised (empty members dropped, spaces around members trimmed), or null when
 * it is absent, empty or invalid (a bad member, a key given twice, more than 32 members). Longer than
 * MAX_TRACESTATE_CHARS: members are dropped from the end (the least recent vendors) until it fits.
 */
export function parseTracestate(header: string | string[] | undefined | null): string | null {
  if (header === undefined || header === null) return null;
  const joined = Array.isArray(header) ? header.join(',') : header;
  if (joined.length > 8192) return null;
  const members: string[] = [];
  const keys = new Set<string>();
  for (const raw of joined.split(',')) {
    const member = raw.trim();
    if (member === '') continue;
    const eq = member.indexOf('=');
    if (eq <= 0) return null;
    const key = member.slice(0, eq);
    if (!KEY.test(key) || !VALUE.test(member.slice(eq + 1)) || keys.has(key)) return null;
    keys.add(key);
    members.push(member);
  }
  if (members.length === 0 || members.length > MAX_TRACESTATE_MEMBERS) return null;
  while (members.length > 0 && members.join(',').length > MAX_TRACESTATE_CHARS) members.pop();
  return members.length === 0 ? null : members.join(',');
}

/** The request's trace context, or null when it carries no valid traceparent. */
export function incomingTrace(traceparent: string | string[] | undefined, tracestate: string | string[] | undefined): IncomingTrace | null {
  // two traceparent headers are as invalid as a malformed one
  const parent = Array.isArray(traceparent) ? null : parseTraceparent(traceparent);
  if (parent === null) return null;
  return { parent, tracestate: parseTracestate(tracestate) };
}

/** The trace id inside a stored traceparent (which PulseGate wrote, so it is well formed). */
export function traceIdOf(traceparent: string | null | undefined): string | undefined {
  return traceparent ? traceparent.slice(3, 35) : undefined;
}

function randomHex(bytes: number): string {
  for (;;) {
    const hex = randomBytes(bytes).toString('hex');
    if (!/^0+$/.test(hex)) return hex; // all zero is invalid (probability 2^-64)
  }
}

export const newSpanId = (): string => randomHex(8);
export const newTraceId = (): string => randomHex(16);
