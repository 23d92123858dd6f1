// What the schedule tests over real processes share: an every-second schedule, and the rule its
// jobs must keep (one job per tick, one tick per second, none lost).
import assert from 'node:assert/strict';
import { jobBody } from '../support/service.js';

/** Creates an every-second schedule through the API at url; returns its id. */
export async function everySecondSchedule(url: string, receiverUrl: string): Promise<string> {
  const res = await fetch(`${url}/v1/schedules`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ cron: '* * * * * *', job: jobBody(`${receiverUrl}/hook`) }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return ((await res.json()) as { id: string }).id;
}

/** Asserts one job per tick and a tick every second from the first to the last; returns the ticks. */
export function assertEachTickOnce(rows: { key: string; n: number | string }[], scheduleId: string): number[] {
  const prefix = `schedule:${scheduleId}:`;
  for (const r of rows) assert.equal(Number(r.n), 1, `tick ${r.key} has ${r.n} jobs`);
  const ticks = rows.map((r) => Date.parse(r.key.slice(prefix.length))).sort((a, b) => a - b);
  for (let i = 1; i < ticks.length; i++) {
    assert.equal((ticks[i] as number) - (ticks[i - 1] as number), 1000, `gap after ${new Date(ticks[i - 1] as number).toISOString()}`);
  }
  return ticks;
}
