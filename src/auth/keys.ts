// API keys: their format, their hash, and the API_KEYS variable.
//
// A key is `pg_<id>_<secret>`: `id` is 12 hex characters, not secret, shown by `keys list` and used
// to revoke; `secret` is 32 random bytes in base64url. Only SHA-256(key) is stored. A fast hash is
// enough here because the key is 256 random bits, not a password: a slow KDF (scrypt, argon2) exists
// to make guessing low-entropy secrets from a leaked hash expensive, and no amount of guessing finds
// a 2^256 preimage. It also keeps authentication cheap on every request; a KDF costing 50 ms per
// request would make the auth check itself a denial-of-service lever.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { tenantIdSchema } from '../api/schemas.js';

/** Who a key acts for: one tenant, or every tenant (admin). */
export type Principal =
  | { kind: 'admin'; key_id: string }
  | { kind: 'tenant'; tenant_id: string; key_id: string };

const KEY_FORMAT = /^pg_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
// Keys set in API_KEYS may be any long-enough token: printable, no separators of the variable's syntax.
const ENV_KEY_FORMAT = /^[A-Za-z0-9._~+/=-]{32,256}$/;
/** The word in API_KEYS that makes a key an admin key. Not a valid tenant id, so never ambiguous. */
export const ADMIN_MARK = '*';

export interface GeneratedKey {
  id: string;
  /** The whole key: shown once, never stored. */
  key: string;
  /** Hex SHA-256 of the whole key: what is stored. */
  hash: string;
}

export function generateKey(random: (n: number) => Buffer = randomBytes): GeneratedKey {
  const id = random(6).toString('hex');
  const key = `pg_${id}_${random(32).toString('base64url')}`;
  return { id, key, hash: hashKey(key) };
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** The id of a key in the pg_<id>_<secret> format, or null for any other string. */
export function keyId(key: string): string | null {
  return KEY_FORMAT.exec(key)?.[1] ?? null;
}

/** Constant-time equality of two hex SHA-256 digests (equal length by construction). */
export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === 32 && y.length === 32 && timingSafeEqual(x, y);
}

export interface EnvKey {
  /** 'env:<n>' (position in API_KEYS, from 1), or the key's own id when it has the pg_ format. */
  id: string;
  /** null for an admin key. */
  tenant_id: string | null;
  hash: string;
}

export class ApiKeysSyntaxError extends Error {
  readonly code = 'api_keys_invalid';
}

/**
 * Parses API_KEYS: comma-separated `<tenant>:<key>` entries, `*:<key>` for an admin key. The entry
 * is split at its last colon (tenant ids may contain colons; keys may not). Errors name the entry by
 * its position only: with the parts swapped or mistyped, any piece of it may be the key.
 */
export function parseEnvKeys(text: string): EnvKey[] {
  const out: EnvKey[] = [];
  const seen = new Set<string>();
  const entries = text.split(',').map((e) => e.trim()).filter(Boolean);
  entries.forEach((entry, i) => {
    const n = i + 1;
    const colon = entry.lastIndexOf(':');
    if (colon <= 0) throw new ApiKeysSyntaxError(`entry ${n} is not <tenant>:<key> or ${ADMIN_MARK}:<key>`);
    const who = entry.slice(0, colon);
    const key = entry.slice(colon + 1);
    if (who !== ADMIN_MARK && !tenantIdSchema.safeParse(who).success) {
      throw new ApiKeysSyntaxError(`entry ${n}: the part before the last colon is not a tenant id (A-Z a-z 0-9 . _ : -) or ${ADMIN_MARK} for admin`);
    }
    if (!ENV_KEY_FORMAT.test(key)) {
      throw new ApiKeysSyntaxError(`entry ${n}: the key must be 32-256 characters of A-Z a-z 0-9 . _ ~ + / = - (generate one with: npm run keys -- generate)`);
    }
    const hash = hashKey(key);
    if (seen.has(hash)) throw new ApiKeysSyntaxError(`entry ${n}: the same key is given twice`);
    seen.add(hash);
    out.push({ id: keyId(key) ?? `env:${n}`, tenant_id: who === ADMIN_MARK ? null : who, hash });
  });
  return out;
}
