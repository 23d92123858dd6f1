// The console's side of the API: the typed client with the key the operator gave, kept for this tab
// only (sessionStorage; never a URL or a cookie), and API errors as the API words them.
import { apiError, createPulseGateClient, type PulseGateClient } from '../../src/client/client.js';

const KEY = 'pulsegate.api-key';

export interface Session {
  client: PulseGateClient;
  key: string | null;
}

export function savedKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function saveKey(key: string | null): void {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

export function session(key: string | null): Session {
  return { client: createPulseGateClient({ baseUrl: '', apiKey: key }), key };
}

/** What a failed call shows: the API's own code and message. */
export class CallError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Unwraps an openapi-fetch result: the data, or a CallError carrying the API's error. */
export function unwrap<T>(r: { data?: T; error?: unknown; response: Response }): T {
  if (r.response.ok && r.data !== undefined) return r.data;
  const e = apiError(r.response.status, r.error);
  throw new CallError(r.response.status, e.code, e.message);
}

export function describeError(err: unknown): string {
  if (err instanceof CallError) return `${err.status} ${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
