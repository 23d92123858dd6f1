// undici's Agent and request(), loaded from their own files: undici's index loads the whole library
// (fetch, WebSocket, EventSource, mocks, caches, proxies: ~100 modules), 3 MB of heap that stays
// for the life of the process, of which delivering needs the Agent and request() only.
// `import type` keeps undici's types without loading its index. The files named here are checked by
// every delivery test; an undici release that moves them fails at start (the require below).

import { createRequire } from 'node:module';
import type { Agent as UndiciAgent, Dispatcher } from 'undici';

const require = createRequire(import.meta.url);

export const Agent = require('undici/lib/dispatcher/agent.js') as typeof UndiciAgent;

type RequestOn = (this: Dispatcher, opts: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
const requestOn = require('undici/lib/api/api-request.js') as RequestOn;
const { parseURL } = require('undici/lib/core/util.js') as { parseURL(url: string): URL };

export type RequestOptions = Omit<Dispatcher.RequestOptions, 'origin' | 'path'> & { dispatcher: Dispatcher };

/** undici's request(url, opts) with opts.dispatcher, as its index builds it (makeDispatcher), for a string URL. */
export function request(url: string, opts: RequestOptions): Promise<Dispatcher.ResponseData> {
  const u = parseURL(url);
  const { dispatcher, ...rest } = opts;
  return requestOn.call(dispatcher, { ...rest, origin: u.origin, path: u.search ? `${u.pathname}${u.search}` : u.pathname });
}
