// Who is calling: turns a presented API key into a Principal, and says whether keys are required.
//
// Keys come from two places: API_KEYS (hashed at start, held in memory) and the store (created with
// `npm run keys`). Lookups are cached for `cacheTtlMs`, answers and refusals alike, so the hot path
// costs a SHA-256 and a map lookup, not a query. The price: a key revoked in the store still works
// until its cache entry expires (at most cacheTtlMs), and a key created in the store is recognized at
// once (it was never cached as unknown: nobody could present it before it existed).
//
// Keys become required as soon as one exists (API_KEYS, or an unrevoked key in the store, checked at
// most once per cacheTtlMs) and stay required while the process runs: revoking the last key must not
// open the API.

import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';
import { hashKey, keyId, sameHash, type EnvKey, type Principal } from './keys.js';

export interface Authenticator {
  /** Whether requests must carry a key. */
  required(): Promise<boolean>;
  /** The principal a presented key stands for; null when it is unknown, revoked or malformed. */
  authenticate(presented: string): Promise<Principal | null>;
}

export interface AuthenticatorOptions {
  store: Pick<Store, 'getApiKey' | 'listApiKeys'>;
  clock: Pick<Clock, 'now'>;
  envKeys: readonly EnvKey[];
  /** How long a lookup (found or not) is trusted. 0 asks the store every time. */
  cacheTtlMs: number;
  /** Entries per cache (one for known keys, one for unknown ones). */
  cacheSize?: number;
  /** AUTH_DISABLED: nothing is required and every caller is admin. */
  disabled?: boolean;
}

interface Entry {
  principal: Principal | null;
  expires_at: number;
}

const DEFAULT_CACHE_SIZE = 10_000;
/** Longer than any key we issue or accept; a longer token is refused without being hashed. */
const MAX_KEY_LENGTH = 512;

export function principalOf(record: { id: string; tenant_id: string | null }): Principal {
  return record.tenant_id === null
    ? { kind: 'admin', key_id: record.id }
    : { kind: 'tenant', tenant_id: record.tenant_id, key_id: record.id };
}

export function createAuthenticator(opts: AuthenticatorOptions): Authenticator {
  const { store, clock, envKeys, cacheTtlMs } = opts;
  const size = opts.cacheSize ?? DEFAULT_CACHE_SIZE;
  // Two caches so a flood of made-up keys cannot evict the real ones.
  const known = new LRUCache<string, Entry>({ max: size });
  const unknown = new LRUCache<string, Entry>({ max: size });
  let latched = envKeys.length > 0;
  let nextStoreCheck = 0;

  async function lookup(presented: string, hash: string): Promise<Principal | null> {
    let found: Principal | null = null;
    // Every env key is compared, in constant time each; the match does not end the loop early.
    for (const k of envKeys) if (sameHash(hash, k.hash) && found === null) found = principalOf(k);
    if (found) return found;
    const id = keyId(presented);
    if (id === null) return null;
    const record = await store.getApiKey(id);
    if (!record || record.revoked_at !== null || !sameHash(hash, record.key_hash)) return null;
    return principalOf(record);
  }

  return {
    async required() {
      if (opts.disabled) return false;
      if (latched) return true;
      const now = clock.now();
      if (now < nextStoreCheck) return false;
      nextStoreCheck = now + cacheTtlMs;
      latched = (await store.listApiKeys()).some((k) => k.revoked_at === null);
      return latched;
    },

    async authenticate(presented) {
      if (presented.length === 0 || presented.length > MAX_KEY_LENGTH) return null;
      const hash = hashKey(presented);
      const now = clock.now();
      const cached = known.get(hash) ?? unknown.get(hash);
      if (cached && now < cached.expires_at) return cached.principal;
      const principal = await lookup(presented, hash);
      if (cacheTtlMs > 0) {
        (principal ? known : unknown).set(hash, { principal, expires_at: now + cacheTtlMs });
        (principal ? unknown : known).delete(hash);
      }
      return principal;
    },
  };
}
