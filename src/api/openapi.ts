// The OpenAPI document, generated from the same zod schemas that validate requests.
import YAML from 'yaml';
import { systemClock } from '../clock.js';
import { loadConfig } from '../config.js';
import type { ApiContext } from './context.js';
import { buildDocumentedServer } from './server.js';

/** Builds the routes (without a store or engine: nothing is called) and renders their document. */
export async function renderOpenApi(): Promise<string> {
  const unused = () => {
    throw new Error('not available while rendering the OpenAPI document');
  };
  const ctx = {
    config: loadConfig({}),
    clock: systemClock,
    events: new Proxy({}, { get: unused }),
    store: new Proxy({}, { get: unused }),
    intake: new Proxy({}, { get: unused }),
    engine: new Proxy({}, { get: unused }),
    lifecycle: { phase: 'starting' },
    metrics: new Proxy({}, { get: unused }),
    destinations: new Proxy({}, { get: unused }),
  } as unknown as ApiContext;
  const app = await buildDocumentedServer(ctx);
  await app.ready();
  const doc = (app as unknown as { swagger(): Record<string, unknown> }).swagger();
  await app.close();
  return YAML.stringify(doc, { aliasDuplicateObjects: false, lineWidth: 0 });
}
