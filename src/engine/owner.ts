// The name an engine holds leases under: host, process and a random tail, so two engines never
// share one (a restarted process gets a new name: the old one's leases run out, never resume).

import { hostname } from 'node:os';
import { uuidv7 } from 'uuidv7';

/** A name for this process's engine, unique across restarts: the lease owner of what it holds. */
export function engineOwner(): string {
  return `${hostname()}:${process.pid}:${uuidv7().slice(-12)}`;
}
