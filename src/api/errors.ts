// Errors that cross the API: a stable machine `code`, an HTTP status, a human message.
// Every error answer has the shape {"error": {"code", "message", "details"?}}.

import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isStoreUnavailable } from '../store/faults.js';

export const ERROR_CODES = [
  'validation_failed',
  'not_found',
  'conflict',
  'payload_too_large',
  'unsupported_media_type',
  'idempotency_key_reused',
  'destination_not_allowed',
  'overloaded',
  'unauthorized',
  'forbidden',
  'request_timeout',
  'store_unavailable',
  'internal',
  'invalid_cron_expression',
  'unknown_time_zone',
  'invalid_schedule_window',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Seconds a client is told to wait (Retry-After) when the store cannot write. */
export const STORE_RETRY_AFTER_S = 5;

/** Bad fields named in one error answer at most. */
export const MAX_FIELDS = 100;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export function errorBody(code: ErrorCode, message: string, details?: unknown): string {
  return JSON.stringify({ error: details === undefined ? { code, message } : { code, message, details } });
}

function sendError(reply: FastifyReply, status: number, code: ErrorCode, message: string, details?: unknown): void {
  void reply.code(status).type('application/json; charset=utf-8').send(errorBody(code, message, details));
}

interface ValidationIssue {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: { keys?: unknown };
}

/** One entry per bad field: an object with unknown keys names each unknown key, not the object. */
function issueFields(where: string, v: ValidationIssue): { field: string; message: string }[] {
  const field = `${where}${(v.instancePath ?? '').replace(/\//g, '.').replace(/^\.$/, '')}`;
  const keys = v.params?.keys;
  if (v.keyword === 'unrecognized_keys' && Array.isArray(keys) && keys.length > 0) {
    return keys.map((k) => ({ field: `${field}.${String(k)}`, message: 'is not a known field' }));
  }
  return [{ field, message: v.message ?? 'is invalid' }];
}

/** Bad fields of a zod validation done by a route itself (a batch item), named as fastify's are. */
export function zodIssueFields(where: string, issues: readonly { path: PropertyKey[]; message: string; code: string; keys?: unknown }[]): { field: string; message: string }[] {
  return issues.flatMap((i) =>
    issueFields(where, {
      instancePath: i.path.length > 0 ? `/${i.path.map(String).join('/')}` : '',
      message: i.message,
      keyword: i.code,
      params: { keys: i.keys },
    }),
  );
}

/** Maps every error a route or fastify itself raises to the error shape and a stable code. */
export function errorHandler(err: FastifyError & { validationContext?: string }, req: FastifyRequest, reply: FastifyReply): void {
  if (err instanceof ApiError) return sendError(reply, err.status, err.code, err.message, err.details);
  if (isStoreUnavailable(err)) {
    // the database is down or full: nothing was acknowledged, the client tries again later
    req.log.warn({ store_code: err.storeCode }, 'store unavailable');
    void reply.header('Retry-After', String(STORE_RETRY_AFTER_S));
    return sendError(reply, 503, 'store_unavailable', `the store cannot take writes now (${err.storeCode}): retry after ${STORE_RETRY_AFTER_S} s`);
  }
  if (Array.isArray(err.validation)) {
    const where = err.validationContext ?? 'body';
    const fields = (err.validation as ValidationIssue[]).flatMap((v) => issueFields(where, v));
    // a well-formed body whose fields break the rules is 422; a malformed query, header or param is 400
    const status = where === 'body' ? 422 : 400;
    // a hostile body can break thousands of rules: name the first MAX_FIELDS, count the rest
    const shown = fields.slice(0, MAX_FIELDS);
    const more = fields.length - shown.length;
    const summary = shown.map((f) => `${f.field} ${f.message}`).join('; ') + (more > 0 ? `; and ${more} more` : '');
    return sendError(reply, status, 'validation_failed', `invalid ${where}: ${summary}`, more > 0 ? { fields: shown, more } : { fields });
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return sendError(reply, 413, 'payload_too_large', 'request body is too large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return sendError(reply, 415, 'unsupported_media_type', 'send the body as application/json');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return sendError(reply, 400, 'validation_failed', 'invalid Content-Length');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return sendError(reply, 400, 'validation_failed', 'the request body is empty');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return sendError(reply, 400, 'validation_failed', 'the request body is not valid JSON');
    // raised by the router (through frameworkErrors) before any route runs
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return sendError(reply, 404, 'not_found', 'not found');
    case 'FST_ERR_BAD_URL':
      return sendError(reply, 400, 'validation_failed', 'the URL is not valid (bad percent-encoding)');
  }
  if (err.statusCode === 408 || err.code === 'FST_ERR_REQUEST_TIMEOUT') {
    return sendError(reply, 408, 'request_timeout', 'the request took too long to arrive');
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return sendError(reply, err.statusCode, 'validation_failed', err.message);
  }
  req.log.error({ err }, 'unhandled error');
  sendError(reply, 500, 'internal', 'internal error');
}

/**
 * Requests Node's HTTP parser refuses before fastify sees them (malformed, headers too large, too
 * slow) are answered on the socket, still in the error shape.
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let status = 400;
  let body = errorBody('validation_failed', 'malformed HTTP request');
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408;
    body = errorBody('request_timeout', 'the request took too long to arrive');
  } else if (err.code === 'HPE_HEADER_OVERFLOW') {
    status = 431;
    body = errorBody('validation_failed', 'the request headers are too large');
  }
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

export function notFoundHandler(req: FastifyRequest, reply: FastifyReply): void {
  sendError(reply, 404, 'not_found', `no route ${req.method} ${req.url.split('?')[0]}`);
}
