// API key management against the service's database: PostgreSQL at DATABASE_URL when set, else the
// SQLite file at DATABASE_PATH (the service may be running: SQLite WAL).
//
//   npm run keys -- create --tenant <id> [--label <text>]   prints the key once, on stdout
//   npm run keys -- create --admin [--label <text>]
//   npm run keys -- list
//   npm run keys -- revoke <id>                            refused within API_KEY_CACHE_TTL_MS
//   npm run keys -- generate                               a key for API_KEYS; nothing is stored
//
// The key is the only thing written to stdout by create and generate, so `KEY=$(npm run -s keys --
// create --tenant demo)` works; everything else goes to stderr. Exit codes: 0 done, 1 refused
// (unknown id), 2 usage.

import 'dotenv/config';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { tenantIdSchema } from '../api/schemas.js';
import { generateKey } from '../auth/keys.js';
import { systemClock } from '../clock.js';
import { configSchema } from '../config.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { ApiKeyRecord, Store } from '../store/store.js';

const USAGE = `usage: npm run keys -- <command>
  create --tenant <id> [--label <text>]   create a key for one tenant (printed once)
  create --admin [--label <text>]         create a key that acts for every tenant
  list                                    list keys (ids, never the keys)
  revoke <id>                             revoke a key
  generate                                print a new key for API_KEYS (nothing is stored)
The database is DATABASE_URL (postgres://…) when set, else DATABASE_PATH (default ./pulsegate.db).`;

class UsageError extends Error {}

function iso(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString();
}

async function create(store: Store, args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { tenant: { type: 'string' }, admin: { type: 'boolean' }, label: { type: 'string' } },
    strict: true,
  });
  if ((values.tenant === undefined) === (values.admin !== true)) throw new UsageError('give exactly one of --tenant <id> or --admin');
  if (values.tenant !== undefined && !tenantIdSchema.safeParse(values.tenant).success) {
    throw new UsageError('--tenant must be 1..128 characters of A-Z a-z 0-9 . _ : -');
  }
  const label = values.label ?? null;
  if (label !== null && label.length > 200) throw new UsageError('--label is at most 200 characters');
  // 48-bit ids: a collision is rare, and answered by drawing another.
  for (let tries = 0; tries < 5; tries++) {
    const g = generateKey();
    const record = { id: g.id, tenant_id: values.tenant ?? null, key_hash: g.hash, label, created_at: systemClock.now() };
    if (await store.createApiKey(record)) {
      const who = record.tenant_id === null ? 'admin' : `tenant ${record.tenant_id}`;
      console.error(`created key ${g.id} for ${who}. It is shown once, below; only its hash is stored.`);
      console.log(g.key);
      return 0;
    }
  }
  throw new Error('could not find a free key id');
}

function list(keys: ApiKeyRecord[]): number {
  if (keys.length === 0) {
    console.error('no keys (create one with: npm run keys -- create --tenant <id>)');
    return 0;
  }
  const rows = keys.map((k) => [k.id, k.tenant_id ?? '* (admin)', iso(k.created_at), k.revoked_at === null ? 'active' : `revoked ${iso(k.revoked_at)}`, k.label ?? '']);
  const header = ['ID', 'TENANT', 'CREATED', 'STATUS', 'LABEL'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  for (const r of [header, ...rows]) console.log(r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd());
  return 0;
}

async function revoke(store: Store, args: string[]): Promise<number> {
  const [id, ...extra] = args;
  if (id === undefined || extra.length > 0) throw new UsageError('revoke takes one key id (see: npm run keys -- list)');
  const k = await store.revokeApiKey(id, systemClock.now());
  if (!k) {
    console.error(`no key with id ${id}`);
    return 1;
  }
  console.error(`key ${id} revoked at ${iso(k.revoked_at)}; a running service refuses it within API_KEY_CACHE_TTL_MS (30 s by default)`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'generate') {
    console.error('a new key for API_KEYS (e.g. API_KEYS=demo:<key>); nothing was stored');
    console.log(generateKey().key);
    return 0;
  }
  if (command !== 'create' && command !== 'list' && command !== 'revoke') throw new UsageError(command ? `unknown command ${command}` : 'no command');
  const url = configSchema.shape.DATABASE_URL.parse(process.env.DATABASE_URL || undefined);
  const store: Store = url
    ? (await import('../store/postgres/postgres-store.js')).openPostgresStore({ connectionString: url, max: 1, notify: false })
    : openSqliteStore({ path: configSchema.shape.DATABASE_PATH.parse(process.env.DATABASE_PATH || undefined) });
  try {
    await store.migrate();
    if (command === 'create') return await create(store, rest);
    if (command === 'list') return list(await store.listApiKeys());
    return await revoke(store, rest);
  } finally {
    await store.close();
  }
}

/** `keys` with its arguments; the exit code (usage errors print the usage and give 2). */
export async function runKeys(argv: string[]): Promise<number> {
  try {
    return await main(argv);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`${(err as Error).message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
}

// run as a program (npm run keys), not when the pulsegate CLI imports it
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await runKeys(process.argv.slice(2));
}
