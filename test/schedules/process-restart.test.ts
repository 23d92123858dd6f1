// A real PulseGate process on a SQLite file, SIGKILLed while an every-second schedule ticks, then
// started again on the same file: the ticks that fell while it was down are created at start (they
// are seconds late, not missed), no tick ever becomes two jobs, and none is lost.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { spawnService, stopAll, type ServiceProcess } from '../support/process.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { eventually } from '../support/service.js';
import { assertEachTickOnce, everySecondSchedule } from './helpers.js';

describe('an every-second schedule across a SIGKILL and a restart on the same SQLite file', () => {
  let dir: string;
  let rx: Receiver;
  const procs: ServiceProcess[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pulsegate-sched-restart-'));
    rx = await startReceiver();
  });
  after(async () => {
    await stopAll(procs, 'SIGKILL');
    await rx.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates every tick exactly once', async () => {
    const env = { DATABASE_PATH: join(dir, 'pulsegate.db'), LOG_LEVEL: 'debug', SHUTDOWN_TIMEOUT_MS: '2000' };
    const ticksIn = async (url: string, id: string) => {
      const res = await fetch(`${url}/v1/jobs?limit=1000`);
      const data = ((await res.json()) as { data: { idempotency_key: string | null }[] }).data;
      return data.filter((j) => j.idempotency_key?.startsWith(`schedule:${id}:`)).length;
    };

    const a = await spawnService(env);
    procs.push(a);
    const id = await everySecondSchedule(a.url, rx.url);
    await eventually(async () => (await ticksIn(a.url, id)) >= 3, 20_000, 50);
    a.child.kill('SIGKILL');
    await a.exited;
    const killedAt = Date.now();
    // 3 s down (the kill comes just after a tick): the next two ticks are over a second late at restart
    await sleep(3000);

    const b = await spawnService(env);
    procs.push(b);
    // ticks of the downtime come from the first round; then a few more
    await eventually(async () => b.logs.filter((l) => l.event === 'schedule.tick' && Date.parse(String(l.tick_at)) > killedAt + 3000).length >= 3, 20_000, 50);
    const paused = await fetch(`${b.url}/v1/schedules/${id}/pause`, { method: 'POST' });
    assert.equal(paused.status, 200);
    b.child.kill('SIGTERM');
    await b.exited;

    const db = new Database(env.DATABASE_PATH, { readonly: true });
    try {
      const rows = db
        .prepare<[string], { key: string; n: number }>(`SELECT idempotency_key AS key, count(*) AS n FROM jobs WHERE idempotency_key LIKE ? GROUP BY idempotency_key ORDER BY 1`)
        .all(`schedule:${id}:%`);
      assertEachTickOnce(rows, id);
      // the restarted process created the ticks that fell while nothing ran (a second or more late)
      const lateFromB = b.logs.filter((l) => l.event === 'schedule.tick' && l.outcome !== 'refused' && Number(l.late_ms) >= 1000);
      assert.ok(lateFromB.length >= 2, `the restarted process caught up ${lateFromB.length} ticks`);
      console.log(`# ${rows.length} ticks, ${lateFromB.length} caught up at restart (${lateFromB.map((l) => l.outcome).join(', ')})`);
    } finally {
      db.close();
    }
  });
});
