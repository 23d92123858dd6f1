// The one body parser: application/json only, strict UTF-8, bounded nesting, an object at the top.
// Anything else is refused before it reaches a route.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
export const MAX_JSON_DEPTH = 64;
/** An exponent of three or more digits, or a run of 300+ digits: the only ways to overflow a double. */
const MAYBE_HUGE_NUMBER = /[eE][+-]?\d{3}|\d{300}/;

function finiteOnly(_key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new ApiError(400, 'validation_failed', 'the request body holds a number too large to represent');
  }
  return value;
}

/** Deepest nesting of arrays/objects in a JSON text, counted without recursion, strings skipped. */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped char
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > max) max = depth;
    } else if (c === 125 || c === 93) depth--;
  }
  return max;
}

export function registerJsonParser(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer' },
    (_req: FastifyRequest, body: Buffer, done: (err: Error | null, value?: unknown) => void) => {
      let text: string;
      try {
        text = decoder.decode(body);
      } catch {
        return done(new ApiError(400, 'validation_failed', 'the request body is not valid UTF-8'));
      }
      if (text.trim() === '') return done(new ApiError(400, 'validation_failed', 'the request body is empty'));
      if (jsonDepth(text) > MAX_JSON_DEPTH) {
        return done(new ApiError(400, 'validation_failed', `the request body nests deeper than ${MAX_JSON_DEPTH} levels`));
      }
      let value: unknown;
      try {
        // a number too large for a double parses to Infinity and would be stored as null: refuse it.
        // The reviver costs a call per value, so it runs only when the text could hold such a number.
        value = MAYBE_HUGE_NUMBER.test(text) ? JSON.parse(text, finiteOnly) : JSON.parse(text);
      } catch (err) {
        if (err instanceof ApiError) return done(err);
        return done(new ApiError(400, 'validation_failed', 'the request body is not valid JSON'));
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        return done(new ApiError(400, 'validation_failed', 'the request body must be a JSON object'));
      }
      if (Object.prototype.hasOwnProperty.call(value, '__proto__')) {
        return done(new ApiError(400, 'validation_failed', 'the request body may not contain __proto__'));
      }
      done(null, value);
    },
  );
}
