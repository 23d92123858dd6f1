// The one body parser: application/json only, UTF-8 only (a charset parameter naming anything else
// is refused with 415, never decoded as the wrong encoding), strict UTF-8, bounded nesting, no number
// that overflows a double, an object at the top. Anything else is refused before it reaches a route.
// Every check is one linear pass (json-scan.ts): nothing a body holds makes parsing superlinear.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';
import { compactJson, elementPayloads, scanJson } from './json-scan.js';

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
export const MAX_JSON_DEPTH = 64;

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The body's `payload` member as sent, whitespace between tokens removed: stored and delivered
     * as is, so numbers beyond 2^53 and string escapes reach the receiver unchanged. Null when the
     * body has none.
     */
    payloadJson: string | null;
    /** For a batch create: each item's payload text, by position (see payloadJson). */
    itemPayloads: (string | null)[] | null;
  }
}

/** The route whose body is `{"jobs": [...]}`: its items' payloads are kept as text too. */
export const BATCH_ROUTE = '/v1/jobs/batch';

/** The charset a Content-Type names, lower-cased and unquoted, or null when it names none. */
export function charsetOf(contentType: string | undefined): string | null {
  if (contentType === undefined) return null;
  for (const param of contentType.split(';').slice(1)) {
    const eq = param.indexOf('=');
    if (eq < 0) continue;
    if (param.slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    return param.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase();
  }
  return null;
}

/**
 * Parses a request body: the value and the payload's exact text, or the ApiError to answer.
 * Every step is linear in the body's length.
 */
export function parseJsonBody(
  body: Buffer,
  contentType: string | undefined,
  batch = false,
): { value: object; payloadJson: string | null; itemPayloads: (string | null)[] | null } {
  const charset = charsetOf(contentType);
  if (charset !== null && charset !== 'utf-8' && charset !== 'utf8') {
    throw new ApiError(415, 'unsupported_media_type', `the body must be UTF-8 JSON; charset=${charset.slice(0, 40)} is not accepted`);
  }
  let text: string;
  try {
    text = decoder.decode(body);
  } catch {
    throw new ApiError(400, 'validation_failed', 'the request body is not valid UTF-8');
  }
  if (text.trim() === '') throw new ApiError(400, 'validation_failed', 'the request body is empty');
  const scan = scanJson(text, 'payload');
  if (scan.depth > MAX_JSON_DEPTH) {
    throw new ApiError(400, 'validation_failed', `the request body nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError(400, 'validation_failed', 'the request body is not valid JSON');
  }
  // a number too large for a double parses to Infinity and would be stored as null: refuse it
  if (scan.overflows) throw new ApiError(400, 'validation_failed', 'the request body holds a number too large to represent');
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ApiError(400, 'validation_failed', 'the request body must be a JSON object');
  }
  // a key named __proto__ is lost when a validator copies the object (a header of that name would
  // vanish without a word): refused anywhere but inside the payload, which is kept as text
  const member = scan.member;
  if (scan.protoKeys.some((at) => member === null || at < member[0] || at >= member[1])) {
    throw new ApiError(400, 'validation_failed', 'the request body may not contain a key named __proto__ (outside payload)');
  }
  const payloadJson = member === null ? null : compactJson(text.slice(member[0], member[1]));
  return { value, payloadJson, itemPayloads: batch ? elementPayloads(text, 'jobs') : null };
}

export function registerJsonParser(app: FastifyInstance): void {
  app.decorateRequest('payloadJson', null);
  app.decorateRequest('itemPayloads', null);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer' },
    (req: FastifyRequest, body: Buffer, done: (err: Error | null, value?: unknown) => void) => {
      try {
        const parsed = parseJsonBody(body, req.headers['content-type'], req.routeOptions.url === BATCH_ROUTE);
        req.payloadJson = parsed.payloadJson;
        req.itemPayloads = parsed.itemPayloads;
        done(null, parsed.value);
      } catch (err) {
        done(err as Error);
      }
    },
  );
}
