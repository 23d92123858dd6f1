// API keys as stored: hashes only (see ../store.ts).

import type pg from 'pg';
import type { ApiKeyRecord, NewApiKey } from '../store.js';
import { query, type Sql } from './pool.js';

const COLUMNS = 'id, tenant_id, key_hash, label, created_at, revoked_at';

const INSERT: Sql = {
  text: `INSERT INTO api_keys (id, tenant_id, key_hash, label, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO NOTHING`,
};
const GET: Sql = { name: 'pulsegate_get_api_key', text: `SELECT ${COLUMNS} FROM api_keys WHERE id = $1` };
const LIST: Sql = { text: `SELECT ${COLUMNS} FROM api_keys ORDER BY created_at, id` };
// The no-op SET on an already revoked key makes RETURNING answer for it too.
const REVOKE: Sql = {
  text: `UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2::int8) WHERE id = $1 RETURNING ${COLUMNS}`,
};

export async function createApiKey(pool: pg.Pool, k: NewApiKey): Promise<boolean> {
  return (await query(pool, INSERT, [k.id, k.tenant_id, k.key_hash, k.label, k.created_at])).rowCount === 1;
}

export async function getApiKey(pool: pg.Pool, id: string): Promise<ApiKeyRecord | null> {
  return (await query<ApiKeyRecord>(pool, GET, [id])).rows[0] ?? null;
}

export async function listApiKeys(pool: pg.Pool): Promise<ApiKeyRecord[]> {
  return (await query<ApiKeyRecord>(pool, LIST)).rows;
}

export async function revokeApiKey(pool: pg.Pool, id: string, now: number): Promise<ApiKeyRecord | null> {
  return (await query<ApiKeyRecord>(pool, REVOKE, [id, now])).rows[0] ?? null;
}
