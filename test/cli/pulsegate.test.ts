// The `pulsegate` CLI, run as its built binary (dist/cli/pulsegate.js) against a running service and
// a real receiver: every jobs and dlq command, tables and --json, and the exit codes scripts branch on.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { generateKey } from '../../src/auth/keys.js';
import { ensureBuilt } from '../support/build.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { eventually, jobBody, startTestService, type TestService } from '../support/service.js';

const exec = promisify(execFile);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('the pulsegate CLI', () => {
  let bin: string;
  let svc: TestService;
  let rx: Receiver;
  let dir: string;
  let failing = true;
  const key = generateKey().key;

  async function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
    try {
      const { stdout, stderr } = await exec(process.execPath, [bin, ...args], {
        env: { PATH: process.env.PATH ?? '', PULSEGATE_URL: svc.url, PULSEGATE_API_KEY: key, DATABASE_PATH: join(dir, 'keys.db'), ...env },
        timeout: 30_000,
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }

  before(async () => {
    bin = ensureBuilt('cli/pulsegate.js');
    dir = mkdtempSync(join(tmpdir(), 'pulsegate-cli-'));
    rx = await startReceiver((_req, res) => {
      res.writeHead(failing ? 503 : 200).end(failing ? 'down' : 'ok');
    });
    // three refused connections in a row open a destination's circuit (other tenants here fail once)
    svc = await startTestService({ API_KEYS: `*:${key}`, CIRCUIT_FAILURE_THRESHOLD: '3', CIRCUIT_COOLDOWN_MS: '60000' });
  });
  after(async () => {
    await svc.cleanup();
    await rx.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints help for every group, and exits 2 on a usage error', async () => {
    for (const args of [['--help'], ['jobs', '--help'], ['dlq', '--help'], ['destinations', '--help'], ['schedules', '--help']]) {
      const r = await cli(args);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^usage: pulsegate/);
    }
    assert.equal((await cli([])).code, 2);
    const bad = await cli(['jobs', 'explode']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown command jobs explode/);
    assert.equal((await cli(['jobs', 'get'])).code, 2, 'no id');
  });

  let id = '';
  it('creates a job from a file, and gets, lists and shows its attempts, as tables and as JSON', async () => {
    const file = join(dir, 'job.json');
    writeFileSync(file, JSON.stringify(jobBody(`${rx.url}/hook`, { tenant_id: 'cli', payload: { via: 'cli' }, retry: { max_attempts: 1 } })));
    const created = await cli(['jobs', 'create', '--file', file, '--json']);
    assert.equal(created.code, 0, created.stderr);
    id = (JSON.parse(created.stdout) as { id: string }).id;
    await eventually(async () => (await svc.store.getJob(id))?.status === 'failed', 10_000);

    const got = await cli(['jobs', 'get', id]);
    assert.equal(got.code, 0, got.stderr);
    assert.match(got.stdout, /^ID\s+TENANT\s+TYPE\s+STATUS/);
    assert.match(got.stdout, new RegExp(`${id}\\s+cli\\s+webhook\\.dispatch\\s+failed\\s+1\\s+503`));
    assert.match(got.stdout, /payload: \{"via":"cli"\}/);

    const listed = await cli(['jobs', 'list', '--tenant', 'cli', '--status', 'failed', '--json']);
    assert.deepEqual((JSON.parse(listed.stdout) as { data: { id: string }[] }).data.map((j) => j.id), [id]);

    const attempts = await cli(['jobs', 'attempts', id]);
    assert.match(attempts.stdout, /1\s+\S+\s+retryable_error\s+503/);
  });

  it('lists the dead-letter queue and retries from it', async () => {
    const dlq = await cli(['dlq', 'list', '--tenant', 'cli']);
    assert.match(dlq.stdout, new RegExp(id));
    failing = false;
    const retried = await cli(['dlq', 'retry', id, '--json']);
    assert.equal(retried.code, 0, retried.stderr);
    assert.deepEqual(JSON.parse(retried.stdout), { data: [{ id, status: 'queued', error: null }] });
    await eventually(async () => (await svc.store.getJob(id))?.status === 'success', 10_000);
    const again = await cli(['dlq', 'retry', id]);
    assert.equal(again.code, 1, 'a job no longer failed is refused');
    assert.match(again.stdout, /409\s+conflict/);
  });

  it('retries the dead-letter queue by filter, counting first with --dry-run', async () => {
    failing = true;
    const file = join(dir, 'bulk.json');
    writeFileSync(file, JSON.stringify(jobBody(`${rx.url}/bulk`, { tenant_id: 'bulk', payload: { bulk: 1 }, retry: { max_attempts: 1 } })));
    const a = JSON.parse((await cli(['jobs', 'create', '--file', file, '--json'])).stdout) as { id: string };
    await eventually(async () => (await svc.store.getJob(a.id))?.status === 'failed', 10_000);
    const dry = await cli(['dlq', 'retry', '--tenant', 'bulk', '--status-code', '503', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`^1 job would be retried\\n\\nDESTINATION\\s+JOBS\\n-+\\s+-+\\n${new URL(rx.url).origin}\\s+1`));
    assert.equal((await svc.store.getJob(a.id))?.status, 'failed', 'a dry run changes nothing');
    failing = false;
    const done = await cli(['dlq', 'retry', '--tenant', 'bulk', '--idempotency-key', 'cli-replay-1', '--json']);
    assert.equal(done.code, 0, done.stderr);
    assert.equal((JSON.parse(done.stdout) as { jobs: number }).jobs, 1);
    await eventually(async () => (await svc.store.getJob(a.id))?.status === 'success', 10_000);
    const usage = await cli(['dlq', 'retry', a.id, '--tenant', 'bulk']);
    assert.equal(usage.code, 2, 'ids and filters together');
  });

  it('cancels waiting jobs by filter', async () => {
    const file = join(dir, 'far.json');
    writeFileSync(file, JSON.stringify(jobBody(`${rx.url}/far`, { tenant_id: 'far', payload: { far: 1 }, delay_ms: 86_400_000 })));
    const far = JSON.parse((await cli(['jobs', 'create', '--file', file, '--json'])).stdout) as { id: string };
    const r = await cli(['jobs', 'cancel', '--tenant', 'far']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^1 job cancelled/);
    assert.equal((await svc.store.getJob(far.id))?.status, 'cancelled');
  });

  it('cancels a job, and exits 1 with the API error code when the API refuses', async () => {
    const file = join(dir, 'later.json');
    writeFileSync(file, JSON.stringify(jobBody(`${rx.url}/hook`, { tenant_id: 'cli', payload: { later: true }, delay_ms: 86_400_000 })));
    const later = JSON.parse((await cli(['jobs', 'create', '--file', file, '--json'])).stdout) as { id: string };
    const cancelled = await cli(['jobs', 'cancel', later.id]);
    assert.equal(cancelled.code, 0, cancelled.stderr);
    assert.match(cancelled.stdout, /cancelled/);
    const twice = await cli(['jobs', 'cancel', later.id]);
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /^409 conflict: job is already cancelled/);
    const missing = await cli(['jobs', 'get', '01a22fd1-230a-7b20-a6ce-0606ed96f440']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /404 not_found/);
    const invalid = await cli(['jobs', 'create', '--file', join(dir, 'nope.json')]);
    assert.equal(invalid.code, 2);
  });

  it('exits 1 on a wrong key and 3 when the service cannot be reached', async () => {
    const wrong = await cli(['jobs', 'list'], { PULSEGATE_API_KEY: generateKey().key });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /401 unauthorized/);
    const down = await cli(['jobs', 'list', '--url', 'http://127.0.0.1:9']);
    assert.equal(down.code, 3);
    assert.match(down.stderr, /cannot reach the service/);
  });

  it('lists destinations with their circuits, and resets an open one', async () => {
    const gone = await startReceiver();
    const dead = `${gone.url}/hook`;
    await gone.close();
    const file = join(dir, 'dead.json');
    writeFileSync(file, JSON.stringify(jobBody(dead, { tenant_id: 'dead', payload: { dead: 1 }, retry: { max_attempts: 5, base_delay_ms: 10 } })));
    assert.equal((await cli(['jobs', 'create', '--file', file])).code, 0);
    const origin = new URL(dead).origin;
    const open = await eventually(async () => {
      const r = await cli(['destinations', 'list', '--circuit', 'open', '--json']);
      const list = (JSON.parse(r.stdout) as { data: { id: string; origin: string }[] }).data;
      return list.find((d) => d.origin === origin) ?? null;
    }, 10_000);
    const table = await cli(['destinations', 'list', '--tenant', 'dead']);
    assert.match(table.stdout, /^ID\s+TENANT\s+ORIGIN\s+CIRCUIT/);
    assert.match(table.stdout, new RegExp(`dead\\s+${origin.replace(/[.]/g, '\\.')}\\s+open`));
    const reset = await cli(['destinations', 'reset', open.id]);
    assert.equal(reset.code, 0, reset.stderr);
    assert.match(reset.stdout, /closed|half_open/);
    const unknown = await cli(['destinations', 'reset', 'bm9uZSBodHRwOi8veA']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /404 not_found/);
    await cli(['jobs', 'cancel', '--tenant', 'dead']);
  });

  it('creates, lists, gets, pauses, resumes and deletes a schedule', async () => {
    const file = join(dir, 'schedule.json');
    writeFileSync(file, JSON.stringify({ cron: '0 3 * * *', time_zone: 'Europe/Berlin', job: jobBody(`${rx.url}/nightly`, { type: 'report.nightly' }) }));
    const created = await cli(['schedules', 'create', '--file', file, '--json']);
    assert.equal(created.code, 0, created.stderr);
    const { id } = JSON.parse(created.stdout) as { id: string };
    const list = await cli(['schedules', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /NEXT TICK/);
    assert.match(list.stdout, new RegExp(`${id}.*0 3 \\* \\* \\*.*Europe/Berlin.*active`));
    assert.match((await cli(['schedules', 'get', id])).stdout, /report\.nightly/);
    assert.match((await cli(['schedules', 'pause', id])).stdout, /paused/);
    const again = await cli(['schedules', 'pause', id]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /409 conflict/);
    assert.match((await cli(['schedules', 'resume', id])).stdout, /active/);
    const gone = await cli(['schedules', 'delete', id]);
    assert.equal(gone.code, 0, gone.stderr);
    assert.equal((await cli(['schedules', 'get', id])).code, 1);
  });

  it('runs the local keys commands', async () => {
    const r = await cli(['keys', 'create', '--tenant', 'cli']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^pg_[0-9a-f]{12}_/);
    const list = await cli(['keys', 'list']);
    assert.match(list.stdout + list.stderr, /cli/);
  });
});
