// Standard Webhooks signatures (https://www.standardwebhooks.com): the webhook-signature header is
// "v1,<base64 HMAC-SHA256(key, `${webhook-id}.${webhook-timestamp}.${body}`)>", one entry per active
// secret, space-separated. Signing with every active secret is what makes rotation safe: a receiver
// still holding the old secret verifies the old entry until the old secret's expires_at passes.

import { createHmac } from 'node:crypto';

export interface SigningSecret {
  /** 'whsec_' followed by the base64 key. */
  secret: string;
  /** The tenant it signs for; omitted for the global secrets. */
  tenant_id?: string;
  /** Epoch ms after which it is no longer used. Until then it keeps signing: the rotation grace. */
  expires_at?: number;
}

export interface Signer {
  /** The webhook-signature header value, or null when the tenant has no active secret. */
  sign(tenantId: string, msgId: string, timestampS: number, body: string, now: number): string | null;
}

export class InvalidSigningSecretError extends Error {
  readonly code = 'invalid_signing_secret';
}

const PREFIX = 'whsec_';
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// The spec recommends keys of 24 to 64 bytes.
const MIN_KEY_BYTES = 24;
const MAX_KEY_BYTES = 64;

/** Decodes a 'whsec_<base64>' secret to its key bytes; throws InvalidSigningSecretError explaining what is wrong. */
export function parseSecret(secret: string): Buffer {
  if (!secret.startsWith(PREFIX)) {
    throw new InvalidSigningSecretError(`signing secret must start with "${PREFIX}" followed by base64`);
  }
  const b64 = secret.slice(PREFIX.length);
  if (b64 === '' || !BASE64.test(b64)) {
    throw new InvalidSigningSecretError(`signing secret after "${PREFIX}" must be standard base64 (A-Z a-z 0-9 + /, = padding)`);
  }
  const key = Buffer.from(b64, 'base64');
  if (key.length < MIN_KEY_BYTES || key.length > MAX_KEY_BYTES) {
    throw new InvalidSigningSecretError(`signing secret must decode to ${MIN_KEY_BYTES}-${MAX_KEY_BYTES} bytes, got ${key.length}`);
  }
  return key;
}

/** One signature, "v1,<base64>", over `${msgId}.${timestampS}.${body}`. */
export function signWithKey(key: Buffer, msgId: string, timestampS: number, body: string): string {
  const mac = createHmac('sha256', key).update(`${msgId}.${timestampS}.${body}`, 'utf8').digest('base64');
  return `v1,${mac}`;
}

interface Key {
  key: Buffer;
  expires_at: number | null;
}

/** A tenant's own secrets all stop signing within this long: warn (once per tenant) while signing. */
export const EXPIRY_WARNING_MS = 7 * 86_400_000;

export interface SignerEvents {
  /** A tenant's own secrets all expire within EXPIRY_WARNING_MS; called once per tenant. */
  onExpiring?(tenantId: string, expiresAt: number): void;
  /** A tenant's own secrets have all expired: it is signed with the global secrets; once per tenant. */
  onFallback?(tenantId: string, expiredAt: number): void;
}

/**
 * Tenants whose own secrets all carry an expiry, with the last of them: after it they are signed
 * with the global secrets (config refuses a set that expires with no global secret to fall back on).
 */
export function tenantSecretExpiries(secrets: SigningSecret[]): Map<string, number> {
  const last = new Map<string, number>();
  const forever = new Set<string>();
  for (const s of secrets) {
    if (s.tenant_id === undefined) continue;
    if (s.expires_at === undefined) forever.add(s.tenant_id);
    else last.set(s.tenant_id, Math.max(last.get(s.tenant_id) ?? -Infinity, s.expires_at));
  }
  for (const t of forever) last.delete(t);
  return last;
}

export function createSigner(opts: { secrets: SigningSecret[]; events?: SignerEvents }): Signer {
  const global: Key[] = [];
  const byTenant = new Map<string, Key[]>();
  for (const s of opts.secrets) {
    const k: Key = { key: parseSecret(s.secret), expires_at: s.expires_at ?? null };
    if (s.tenant_id === undefined) global.push(k);
    else byTenant.set(s.tenant_id, [...(byTenant.get(s.tenant_id) ?? []), k]);
  }
  const expiries = tenantSecretExpiries(opts.secrets);
  const warned = new Set<string>();
  const fellBack = new Set<string>();
  const active = (keys: Key[], now: number) => keys.filter((k) => k.expires_at === null || now < k.expires_at);
  return {
    sign(tenantId, msgId, timestampS, body, now) {
      // A tenant with its own secrets is signed with those only while one is active: its receiver
      // knows nothing of ours. Once all have expired it falls back to the global secrets, never to
      // no signature at all.
      const own = byTenant.get(tenantId);
      let keys = active(own ?? global, now);
      const lastExpiry = expiries.get(tenantId);
      if (lastExpiry !== undefined) {
        if (keys.length === 0) {
          keys = active(global, now);
          if (!fellBack.has(tenantId)) {
            fellBack.add(tenantId);
            opts.events?.onFallback?.(tenantId, lastExpiry);
          }
        } else if (lastExpiry - now <= EXPIRY_WARNING_MS && !warned.has(tenantId)) {
          warned.add(tenantId);
          opts.events?.onExpiring?.(tenantId, lastExpiry);
        }
      }
      if (keys.length === 0) return null;
      return keys.map((k) => signWithKey(k.key, msgId, timestampS, body)).join(' ');
    },
  };
}
