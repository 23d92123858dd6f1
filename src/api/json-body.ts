// The one body parser: application/json only, strict UTF-8, bounded nesting, an object at the top.
// Anything else is refused before it reaches a route.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
export const MAX_JSON_DEPTH = 64;

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
        value = JSON.parse(text);
      } catch {
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
