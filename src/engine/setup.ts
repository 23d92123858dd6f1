// The engine and the dispatcher it delivers with, built from a Config the same way wherever the
// engine runs: in the main thread (ENGINE_THREAD=false, and tests that drive a fake clock) or on
// the engine thread (thread/worker.ts).

import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import { createDispatcher, type Dispatcher } from '../delivery/dispatcher.js';
import { createSigner, type SigningSecret } from '../delivery/signing.js';
import { createDestinationGuard } from '../delivery/ssrf.js';
import type { EventBus } from '../observability/events.js';
import type { Tracing } from '../observability/tracing.js';
import type { Store } from '../store/store.js';
import { VERSION } from '../version.js';
import { Engine } from './engine.js';

export interface EngineDeps {
  store: Store;
  clock: Clock;
  events: EventBus;
  /** dns.lookup-compatible resolver for deliveries (tests point names at loopback with it). */
  lookup?: Parameters<typeof createDestinationGuard>[0]['lookup'];
  owner?: string;
  random?: () => number;
  /** signingSecrets(config): computed by the caller, so the engine thread never loads config.ts (zod and every API schema). */
  secrets: SigningSecret[];
  /** Trace propagation and attempt spans (observability/tracing.ts); none: no trace context is sent. */
  tracing?: Tracing;
}

export function createEngine(config: Config, d: EngineDeps): { engine: Engine; dispatcher: Dispatcher } {
  const guard = createDestinationGuard({
    allowPrivate: config.ALLOW_PRIVATE_DESTINATIONS,
    allowedCidrs: config.ALLOWED_DESTINATION_CIDRS,
    lookup: d.lookup,
  });
  const signer = d.secrets.length > 0
    ? createSigner({
        secrets: d.secrets,
        events: {
          onExpiring: (tenant_id, expiresAt) => d.events.emit({ type: 'signing.expiring', tenant_id, expires_at: expiresAt }),
          onFallback: (tenant_id, expiresAt) => d.events.emit({ type: 'signing.fallback', tenant_id, expires_at: expiresAt }),
        },
      })
    : null;
  const dispatcher = createDispatcher({ userAgent: `PulseGate/${VERSION}`, guard, signer, clock: d.clock });
  const engine = new Engine({
    store: d.store,
    clock: d.clock,
    events: d.events,
    deliver: (req) => dispatcher.deliver(req),
    capacity: config.QUEUE_CAPACITY,
    concurrency: config.WORKER_CONCURRENCY,
    destinationMaxInFlight: config.DESTINATION_MAX_IN_FLIGHT,
    tenantMaxInFlight: config.TENANT_MAX_IN_FLIGHT,
    circuit: {
      failureThreshold: config.CIRCUIT_FAILURE_THRESHOLD,
      cooldownMs: config.CIRCUIT_COOLDOWN_MS,
      cooldownMaxMs: config.CIRCUIT_COOLDOWN_MAX_MS,
    },
    leaseMs: config.LEASE_MS,
    pollIntervalMs: config.SCHEDULER_POLL_INTERVAL_MS,
    retryAfterMaxMs: config.RETRY_AFTER_MAX_SECONDS * 1000,
    // Only an embedded database may free every lease at start: on PostgreSQL other instances hold theirs.
    recoverAllOnStart: d.store.driver === 'sqlite',
    owner: d.owner,
    random: d.random,
    tracing: d.tracing,
  });
  return { engine, dispatcher };
}
