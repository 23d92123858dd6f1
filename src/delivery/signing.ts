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

export function createSigner(opts: { secrets: SigningSecret[] }): Signer {
  const global: Key[] = [];
  const byTenant = new Map<string, Key[]>();
  for (const s of opts.secrets) {
    const k: Key = { key: parseSecret(s.secret), expires_at: s.expires_at ?? null };
    if (s.tenant_id === undefined) global.push(k);
    else byTenant.set(s.tenant_id, [...(byTenant.get(s.tenant_id) ?? []), k]);
  }
  return {
    sign(tenantId, msgId, timestampS, body, now) {
      // A tenant with its own secrets is signed with those only: its receiver knows nothing of ours.
      const keys = (byTenant.get(tenantId) ?? global).filter((k) => k.expires_at === null || now < k.expires_at);
      if (keys.length === 0) return null;
      return keys.map((k) => signWithKey(k.key, msgId, timestampS, body)).join(' ');
    },
  };
}
