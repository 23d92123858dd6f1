// A destination lane as the API (GET /v1/destinations) and the metrics show it. A destination's id
// in the API is the base64url of its lane key ("<tenant> <origin>"): opaque, stable, and it carries
// the tenant, so a tenant key can only name its own destinations.

import type { RateLimit } from '../domain/job.js';
import type { CircuitState } from './circuit.js';
import type { Lane } from './lane.js';

/** One destination lane as the API and metrics show it. */
export interface DestinationState {
  key: string;
  tenant_id: string;
  origin: string;
  circuit: CircuitState;
  in_flight: number;
  waiting: number;
  max_in_flight: number;
  consecutive_failures: number;
  last_error: string | null;
  last_error_at: number | null;
  /** When an open circuit lets its next probe out. */
  probe_at: number | null;
  rate_limit: RateLimit | null;
}

export function destinationState(lane: Lane): DestinationState {
  const c = lane.circuit;
  return {
    key: lane.key,
    tenant_id: lane.tenantId,
    origin: lane.origin,
    circuit: c.state,
    in_flight: lane.inFlight,
    waiting: lane.waiting,
    max_in_flight: lane.maxInFlight,
    consecutive_failures: c.failures,
    last_error: lane.lastError,
    last_error_at: lane.lastErrorAt,
    probe_at: c.state === 'open' ? c.openUntil : null,
    rate_limit: lane.rateLimit,
  };
}

export function destinationId(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

/** The lane key a destination id names, or null when it is not one. */
export function destinationKey(id: string): string | null {
  if (!/^[A-Za-z0-9_-]{1,2800}$/.test(id)) return null;
  const key = Buffer.from(id, 'base64url').toString('utf8');
  return key.includes(' ') && destinationId(key) === id ? key : null;
}
