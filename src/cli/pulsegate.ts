#!/usr/bin/env node
// The `pulsegate` command: the API from a terminal, through the typed client (src/client), plus the
// local `keys` commands. A table for people by default, --json for scripts.
//
//   pulsegate jobs create --file job.json | jobs get <id> | jobs list [filters] | jobs attempts <id>
//   pulsegate jobs cancel <id> | jobs retry <id>
//   pulsegate dlq list [--tenant T] | dlq retry <id>... | dlq retry [filters] [--dry-run]
//   pulsegate destinations list [--tenant T] [--circuit S] | destinations reset <id>
//   pulsegate schedules create --file s.json | list | get <id> | pause <id> | resume <id> | delete <id>
//   pulsegate keys create|list|revoke|generate ...        (on the database at DATABASE_PATH)
//
// Where: --url or PULSEGATE_URL (default http://127.0.0.1:8080); --api-key or PULSEGATE_API_KEY.
// Exit codes: 0 done; 1 the API refused (a 4xx: the error code is printed); 2 usage;
// 3 the service could not be reached or failed (5xx).

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { apiError, createPulseGateClient, type PulseGateClient } from '../client/client.js';

const EXIT = { ok: 0, refused: 1, usage: 2, unavailable: 3 } as const;

const HELP: Record<string, string> = {
  main: `usage: pulsegate <group> <command> [options]
  jobs         create | get | list | attempts | cancel | retry
  dlq          list | retry
  destinations list | reset
  schedules    create | list | get | pause | resume | delete
  keys         create | list | revoke | generate   (local: the database at DATABASE_PATH)
options for every API command:
  --url <url>        the service (PULSEGATE_URL; default http://127.0.0.1:8080)
  --api-key <key>    an API key (PULSEGATE_API_KEY)
  --json             print the API's JSON instead of a table
exit codes: 0 done, 1 refused by the API (4xx), 2 usage, 3 unreachable or 5xx
'pulsegate <group> --help' and 'pulsegate <group> <command> --help' say more.`,
  jobs: `usage: pulsegate jobs <command>
  create --file <job.json> [--idempotency-key K]   create a job from a JSON file ('-' for stdin)
  get <id>                                         one job
  list [--tenant T] [--status S] [--type T] [--limit N] [--cursor C] [--all]
                                                   jobs, newest first (--all follows every page)
  attempts <id>                                    a job's attempts, oldest first
  cancel <id>                                      cancel a job that has not finished
  cancel [filters] [--dry-run] [--idempotency-key K]
                                                   cancel every waiting job matching the filters:
                                                   --tenant --type --origin --created-after
                                                   --created-before --error-kind --status-code --limit
  retry <id>                                       queue a failed or cancelled job again`,
  dlq: `usage: pulsegate dlq <command>
  list [--tenant T] [--limit N] [--cursor C] [--all]   failed jobs, newest first
  retry <id>...                                        queue these failed jobs again, one by one
  retry [filters] [--dry-run] [--idempotency-key K]    queue every failed job matching the filters
        filters: --tenant T --type T --origin https://host[:port] --failed-after TIME
                 --failed-before TIME --error-kind KIND --status-code N --limit N
        (one call: paced by each destination's rate limit; --dry-run only counts)`,
  destinations: `usage: pulsegate destinations <command>
  list [--tenant T] [--circuit closed|open|half_open] [--limit N]
                          each (tenant, origin) lane: circuit, failures in a row, in flight, waiting
  reset <id>              close a destination's circuit by hand (the id from list)`,
  schedules: `usage: pulsegate schedules <command>
  create --file <schedule.json>     create a schedule from a JSON file ('-' for stdin)
  list [--tenant T] [--status active|paused|ended] [--limit N] [--cursor C] [--all]
                                    schedules, newest first
  get <id>                          one schedule, with its job template
  pause <id> | resume <id>          stop its ticks / tick again from now on
  delete <id>                       delete it (the jobs its ticks created stay)`,
};

class UsageError extends Error {}

/** A failed API call: the status and the API's error. */
class CallFailed extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Out {
  json: boolean;
  print(text: string): void;
}

async function call<T>(p: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let r: { data?: T; error?: unknown; response: Response };
  try {
    r = await p;
  } catch (err) {
    throw new CallFailed(0, 'unreachable', `cannot reach the service: ${(err as Error).message}`);
  }
  if (r.response.ok && r.data !== undefined) return r.data;
  const e = apiError(r.response.status, r.error);
  throw new CallFailed(r.response.status, e.code, e.message);
}

/** Columns padded to their widest cell; long cells cut with an ellipsis. */
function table(headers: string[], rows: (string | number | null)[][]): string {
  const cells = rows.map((r) => r.map((c) => {
    const s = c === null ? '-' : String(c).replace(/\s+/g, ' ');
    return s.length > 60 ? `${s.slice(0, 59)}…` : s;
  }));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

interface JobLike {
  id: string;
  tenant_id: string;
  type: string;
  status: string;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  created_at: string;
}

function jobRows(jobs: JobLike[]): string {
  return table(
    ['ID', 'TENANT', 'TYPE', 'STATUS', 'ATTEMPTS', 'LAST', 'CREATED'],
    jobs.map((j) => [j.id, j.tenant_id, j.type, j.status, j.attempts, j.last_status_code ?? j.last_error, j.created_at]),
  );
}

const FILTERS = {
  tenant: { type: 'string' },
  type: { type: 'string' },
  origin: { type: 'string' },
  'error-kind': { type: 'string' },
  'status-code': { type: 'string' },
  limit: { type: 'string' },
  'dry-run': { type: 'boolean' },
  'idempotency-key': { type: 'string' },
} as const;

type FilterValues = { [K in keyof typeof FILTERS]?: (typeof FILTERS)[K]['type'] extends 'boolean' ? boolean : string };

function filterBody(v: FilterValues, extra: Record<string, string | undefined>) {
  const num = (s: string | undefined, name: string) => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isInteger(n)) throw new UsageError(`--${name} must be a whole number`);
    return n;
  };
  const body: Record<string, unknown> = {
    tenant_id: v.tenant,
    type: v.type,
    destination_origin: v.origin,
    error_kind: v['error-kind'],
    status_code: num(v['status-code'], 'status-code'),
    limit: num(v.limit, 'limit'),
    dry_run: v['dry-run'] === true,
    ...extra,
  };
  return Object.fromEntries(Object.entries(body).filter(([, x]) => x !== undefined));
}

interface BulkAnswer {
  action: string;
  dry_run: boolean;
  jobs: number;
  destinations: { origin: string; jobs: number }[];
}

function bulkText(r: BulkAnswer): string {
  const verb = r.action === 'retry' ? 'retried' : 'cancelled';
  const head = `${r.jobs} job${r.jobs === 1 ? '' : 's'} ${r.dry_run ? `would be ${verb}` : verb}`;
  return r.destinations.length ? `${head}\n\n${table(['DESTINATION', 'JOBS'], r.destinations.map((d) => [d.origin, d.jobs]))}` : head;
}

/** A bulk command by filter (retry or cancel), with its Idempotency-Key when given. */
async function bulkCommand(
  client: PulseGateClient,
  path: '/v1/jobs/cancel' | '/v1/dlq/retry',
  values: FilterValues,
  extra: Record<string, string | undefined>,
  out: Out,
): Promise<number> {
  const key = values['idempotency-key'];
  const r = await call(client.POST(path, { body: filterBody(values, extra) as never, params: { header: key ? { 'idempotency-key': key } : {} } }));
  out.print(out.json ? JSON.stringify(r) : bulkText(r as BulkAnswer));
  return EXIT.ok;
}

function oneId(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`give one ${what}`);
  return positionals[0] as string;
}

async function listPages<T>(all: boolean, fetchPage: (cursor: string | undefined) => Promise<{ data: T[]; next_cursor: string | null }>, first?: string) {
  const data: T[] = [];
  let cursor = first;
  for (let pages = 0; pages < 10_000; pages++) {
    const page = await fetchPage(cursor);
    data.push(...page.data);
    if (!all || page.next_cursor === null) return { data, next_cursor: page.next_cursor };
    cursor = page.next_cursor;
  }
  return { data, next_cursor: cursor ?? null };
}

async function jobs(client: PulseGateClient, command: string | undefined, args: string[], out: Out): Promise<number> {
  switch (command) {
    case 'create': {
      const { values } = parseArgs({ args, options: { file: { type: 'string' }, 'idempotency-key': { type: 'string' } }, strict: true });
      if (!values.file) throw new UsageError('give --file <job.json> (or --file - for stdin)');
      let body: unknown;
      try {
        body = JSON.parse(readFileSync(values.file === '-' ? 0 : values.file, 'utf8'));
      } catch (err) {
        throw new UsageError(`cannot read a JSON job from ${values.file}: ${(err as Error).message}`);
      }
      const key = values['idempotency-key'];
      const job = await call(client.POST('/v1/jobs', { body: body as never, params: { header: key ? { 'idempotency-key': key } : {} } }));
      out.print(out.json ? JSON.stringify(job) : jobRows([job]));
      return EXIT.ok;
    }
    case 'get': {
      const { positionals } = parseArgs({ args, allowPositionals: true, strict: true });
      const job = await call(client.GET('/v1/jobs/{id}', { params: { path: { id: oneId(positionals, 'job id') } } }));
      out.print(out.json ? JSON.stringify(job) : `${jobRows([job])}\n\npayload: ${JSON.stringify(job.payload)}\ndestination: ${job.destination.method} ${job.destination.url}`);
      return EXIT.ok;
    }
    case 'list': {
      const { values } = parseArgs({
        args,
        options: { tenant: { type: 'string' }, status: { type: 'string' }, type: { type: 'string' }, limit: { type: 'string' }, cursor: { type: 'string' }, all: { type: 'boolean' } },
        strict: true,
      });
      const query = {
        ...(values.tenant ? { tenant_id: values.tenant } : {}),
        ...(values.status ? { status: values.status as 'failed' } : {}),
        ...(values.type ? { type: values.type } : {}),
        ...(values.limit ? { limit: Number(values.limit) } : {}),
      };
      const page = await listPages(values.all === true, (cursor) => call(client.GET('/v1/jobs', { params: { query: { ...query, ...(cursor ? { cursor } : {}) } } })), values.cursor);
      out.print(out.json ? JSON.stringify(page) : `${jobRows(page.data)}${page.next_cursor ? `\n(more: --cursor ${page.next_cursor})` : ''}`);
      return EXIT.ok;
    }
    case 'attempts': {
      const { positionals } = parseArgs({ args, allowPositionals: true, strict: true });
      const list = await call(client.GET('/v1/jobs/{id}/attempts', { params: { path: { id: oneId(positionals, 'job id') } } }));
      out.print(
        out.json
          ? JSON.stringify(list)
          : table(
              ['#', 'STARTED', 'OUTCOME', 'STATUS', 'MS', 'ERROR'],
              list.data.map((a) => [a.attempt, a.started_at, a.outcome, a.status_code, a.duration_ms, a.error]),
            ),
      );
      return EXIT.ok;
    }
    case 'cancel':
    case 'retry': {
      if (command === 'cancel' && args.some((a) => a.startsWith('--'))) {
        const { values, positionals } = parseArgs({ args, allowPositionals: true, strict: true, options: { ...FILTERS, 'created-after': { type: 'string' }, 'created-before': { type: 'string' } } });
        if (positionals.length > 0) throw new UsageError('give a job id or filters, not both');
        return bulkCommand(client, '/v1/jobs/cancel', values, { created_after: values['created-after'], created_before: values['created-before'] }, out);
      }
      const { positionals } = parseArgs({ args, allowPositionals: true, strict: true });
      const id = oneId(positionals, 'job id');
      const job = await call(client.POST(command === 'cancel' ? '/v1/jobs/{id}/cancel' : '/v1/jobs/{id}/retry', { params: { path: { id } } }));
      out.print(out.json ? JSON.stringify(job) : jobRows([job]));
      return EXIT.ok;
    }
    default:
      throw new UsageError(command ? `unknown command jobs ${command}` : 'give a jobs command');
  }
}

async function dlq(client: PulseGateClient, command: string | undefined, args: string[], out: Out): Promise<number> {
  switch (command) {
    case 'list': {
      const { values } = parseArgs({ args, options: { tenant: { type: 'string' }, limit: { type: 'string' }, cursor: { type: 'string' }, all: { type: 'boolean' } }, strict: true });
      const query = { ...(values.tenant ? { tenant_id: values.tenant } : {}), ...(values.limit ? { limit: Number(values.limit) } : {}) };
      const page = await listPages(values.all === true, (cursor) => call(client.GET('/v1/dlq', { params: { query: { ...query, ...(cursor ? { cursor } : {}) } } })), values.cursor);
      out.print(out.json ? JSON.stringify(page) : jobRows(page.data));
      return EXIT.ok;
    }
    case 'retry': {
      const { values, positionals } = parseArgs({ args, allowPositionals: true, strict: true, options: { ...FILTERS, 'failed-after': { type: 'string' }, 'failed-before': { type: 'string' } } });
      if (positionals.length === 0) {
        if (!args.some((a) => a.startsWith('--'))) throw new UsageError('give the ids of the jobs to retry, or filters');
        return bulkCommand(client, '/v1/dlq/retry', values, { failed_after: values['failed-after'], failed_before: values['failed-before'] }, out);
      }
      if (args.some((a) => a.startsWith('--'))) throw new UsageError('give job ids or filters, not both');
      const results: { id: string; status: string; error: string | null }[] = [];
      let refused = 0;
      for (const id of positionals) {
        try {
          const job = await call(client.POST('/v1/jobs/{id}/retry', { params: { path: { id } } }));
          results.push({ id, status: job.status, error: null });
        } catch (err) {
          if (!(err instanceof CallFailed) || err.status === 0 || err.status >= 500) throw err;
          refused++;
          results.push({ id, status: `${err.status}`, error: `${err.code}: ${err.message}` });
        }
      }
      out.print(out.json ? JSON.stringify({ data: results }) : table(['ID', 'STATUS', 'ERROR'], results.map((r) => [r.id, r.status, r.error])));
      return refused > 0 ? EXIT.refused : EXIT.ok;
    }
    default:
      throw new UsageError(command ? `unknown command dlq ${command}` : 'give a dlq command');
  }
}

interface DestinationLike {
  id: string;
  tenant_id: string;
  origin: string;
  circuit: { state: string; consecutive_failures: number; probe_at: string | null };
  in_flight: number;
  max_in_flight: number;
  waiting: number;
  last_error: string | null;
}

function destinationRows(list: DestinationLike[]): string {
  return table(
    ['ID', 'TENANT', 'ORIGIN', 'CIRCUIT', 'FAILURES', 'IN FLIGHT', 'WAITING', 'LAST ERROR'],
    list.map((d) => [d.id, d.tenant_id, d.origin, d.circuit.state, d.circuit.consecutive_failures, `${d.in_flight}/${d.max_in_flight}`, d.waiting, d.last_error]),
  );
}

async function destinations(client: PulseGateClient, command: string | undefined, args: string[], out: Out): Promise<number> {
  switch (command) {
    case 'list': {
      const { values } = parseArgs({ args, options: { tenant: { type: 'string' }, circuit: { type: 'string' }, limit: { type: 'string' } }, strict: true });
      const circuit = values.circuit;
      if (circuit !== undefined && !['closed', 'open', 'half_open'].includes(circuit)) throw new UsageError('--circuit is closed, open or half_open');
      const query = {
        ...(values.tenant ? { tenant_id: values.tenant } : {}),
        ...(circuit ? { circuit: circuit as 'open' } : {}),
        ...(values.limit ? { limit: Number(values.limit) } : {}),
      };
      const page = await call(client.GET('/v1/destinations', { params: { query } }));
      out.print(out.json ? JSON.stringify(page) : destinationRows(page.data));
      return EXIT.ok;
    }
    case 'reset': {
      const { positionals } = parseArgs({ args, allowPositionals: true, strict: true });
      const d = await call(client.POST('/v1/destinations/{id}/reset', { params: { path: { id: oneId(positionals, 'destination id') } } }));
      out.print(out.json ? JSON.stringify(d) : destinationRows([d]));
      return EXIT.ok;
    }
    default:
      throw new UsageError(command ? `unknown command destinations ${command}` : 'give a destinations command');
  }
}

interface ScheduleLike {
  id: string;
  tenant_id: string;
  cron: string;
  time_zone: string;
  status: string;
  next_tick_at: string | null;
  last_tick_at: string | null;
  job: Record<string, unknown>;
}

function scheduleRows(list: ScheduleLike[]): string {
  return table(
    ['ID', 'TENANT', 'CRON', 'TIME ZONE', 'STATUS', 'NEXT TICK', 'LAST TICK', 'TYPE'],
    list.map((s) => [s.id, s.tenant_id, s.cron, s.time_zone, s.status, s.next_tick_at, s.last_tick_at, String(s.job.type ?? '')]),
  );
}

async function schedules(client: PulseGateClient, command: string | undefined, args: string[], out: Out): Promise<number> {
  const id = () => ({ params: { path: { id: oneId(parseArgs({ args, allowPositionals: true, strict: true }).positionals, 'schedule id') } } });
  switch (command) {
    case 'create': {
      const { values } = parseArgs({ args, options: { file: { type: 'string' } }, strict: true });
      if (!values.file) throw new UsageError('give --file <schedule.json> (or --file - for stdin)');
      let body: unknown;
      try {
        body = JSON.parse(readFileSync(values.file === '-' ? 0 : values.file, 'utf8'));
      } catch (err) {
        throw new UsageError(`cannot read a JSON schedule from ${values.file}: ${(err as Error).message}`);
      }
      const s = await call(client.POST('/v1/schedules', { body: body as never }));
      out.print(out.json ? JSON.stringify(s) : scheduleRows([s]));
      return EXIT.ok;
    }
    case 'list': {
      const { values } = parseArgs({
        args,
        options: { tenant: { type: 'string' }, status: { type: 'string' }, limit: { type: 'string' }, cursor: { type: 'string' }, all: { type: 'boolean' } },
        strict: true,
      });
      const query = {
        ...(values.tenant ? { tenant_id: values.tenant } : {}),
        ...(values.status ? { status: values.status as 'active' } : {}),
        ...(values.limit ? { limit: Number(values.limit) } : {}),
      };
      const page = await listPages(values.all === true, (cursor) => call(client.GET('/v1/schedules', { params: { query: { ...query, ...(cursor ? { cursor } : {}) } } })), values.cursor);
      out.print(out.json ? JSON.stringify(page) : `${scheduleRows(page.data)}${page.next_cursor ? `\n(more: --cursor ${page.next_cursor})` : ''}`);
      return EXIT.ok;
    }
    case 'get': {
      const s = await call(client.GET('/v1/schedules/{id}', id()));
      out.print(out.json ? JSON.stringify(s) : `${scheduleRows([s])}\n\njob: ${JSON.stringify(s.job)}`);
      return EXIT.ok;
    }
    case 'pause':
    case 'resume': {
      const s = await call(client.POST(command === 'pause' ? '/v1/schedules/{id}/pause' : '/v1/schedules/{id}/resume', id()));
      out.print(out.json ? JSON.stringify(s) : scheduleRows([s]));
      return EXIT.ok;
    }
    case 'delete': {
      const params = id();
      // 204: no body to hand back
      await call(client.DELETE('/v1/schedules/{id}', params).then((r) => (r.response.ok ? { ...r, data: null } : r)));
      out.print(out.json ? JSON.stringify({ deleted: params.params.path.id }) : `deleted ${params.params.path.id}`);
      return EXIT.ok;
    }
    default:
      throw new UsageError(command ? `unknown command schedules ${command}` : 'give a schedules command');
  }
}

/** Runs one command line; returns the exit code. Output goes to out, diagnostics to err. */
async function run(argv: string[], env: NodeJS.ProcessEnv, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const globals = parseArgs({
    args: argv,
    options: { url: { type: 'string' }, 'api-key': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: false,
  });
  const [group, command] = globals.positionals;
  // the command's own arguments: everything but the group, the command and the global options
  const rest: string[] = [];
  let skipped = 0;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--url' || a === '--api-key') {
      i++;
      continue;
    }
    if (a.startsWith('--url=') || a.startsWith('--api-key=') || a === '--json' || a === '--help' || a === '-h') continue;
    if (skipped < (command === undefined ? 1 : 2) && (a === group || a === command)) {
      skipped++;
      continue;
    }
    rest.push(a);
  }
  if (globals.values.help || group === undefined || group === 'help') {
    out(HELP[group && group !== 'help' ? group : 'main'] ?? HELP.main!);
    return group === undefined && !globals.values.help ? EXIT.usage : EXIT.ok;
  }
  if (group === 'keys') {
    const { runKeys } = await import('./keys.js');
    return runKeys(argv.slice(argv.indexOf('keys') + 1));
  }
  const url = String(globals.values.url ?? env.PULSEGATE_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const apiKey = (globals.values['api-key'] as string | undefined) ?? env.PULSEGATE_API_KEY ?? null;
  const client = createPulseGateClient({ baseUrl: url, apiKey });
  const o: Out = { json: globals.values.json === true, print: out };
  try {
    if (group === 'jobs') return await jobs(client, command, rest, o);
    if (group === 'dlq') return await dlq(client, command, rest, o);
    if (group === 'destinations') return await destinations(client, command, rest, o);
    if (group === 'schedules') return await schedules(client, command, rest, o);
    throw new UsageError(`unknown group ${group}`);
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      err(`${(e as Error).message}\n\n${HELP[group] ?? HELP.main}`);
      return EXIT.usage;
    }
    if (e instanceof CallFailed) {
      err(e.status === 0 ? e.message : `${e.status} ${e.code}: ${e.message}`);
      return e.status === 0 || e.status >= 500 ? EXIT.unavailable : EXIT.refused;
    }
    throw e;
  }
}

process.exitCode = await run(process.argv.slice(2), process.env, (s) => console.log(s), (s) => console.error(s));
