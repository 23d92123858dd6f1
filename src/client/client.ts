// The typed PulseGate client: openapi-fetch over the types generated from the OpenAPI document
// (schema.ts), so the CLI and the console break at build time when the document changes under them.
// Runs in Node and in a browser (fetch only).

import createClient, { type Client } from 'openapi-fetch';
import type { paths } from './schema.js';

export type PulseGateClient = Client<paths>;
export type { paths };

export interface ClientOptions {
  /** e.g. http://127.0.0.1:8080; '' for the page's own origin in a browser. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>`; omitted when null. */
  apiKey: string | null;
  fetch?: typeof fetch;
}

export function createPulseGateClient(o: ClientOptions): PulseGateClient {
  return createClient<paths>({
    baseUrl: o.baseUrl,
    headers: o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {},
    fetch: o.fetch,
  });
}

/** The API's error shape, as every 4xx/5xx carries it. */
export interface ApiErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** The error body of a failed call, or a synthetic one when the answer was not the API's shape. */
export function apiError(status: number, body: unknown): ApiErrorBody['error'] {
  const e = (body as Partial<ApiErrorBody> | null)?.error;
  if (e && typeof e.code === 'string' && typeof e.message === 'string') return e;
  return { code: `http_${status}`, message: `HTTP ${status}` };
}
