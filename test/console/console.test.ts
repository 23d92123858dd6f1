// The console in a real browser (Debian's chromium through playwright-core) against a running
// service and a real receiver: sign in with a key, find a job that failed, read its attempts, replay
// it from the dead-letter queue and see it succeed. Payloads and receiver answers carrying markup are
// shown as text and never run; the key never reaches a URL or a cookie.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CONSOLE_CSP } from '../../src/api/console.js';
import { generateKey } from '../../src/auth/keys.js';
import { chromiumPath, ensureConsoleBuilt } from '../support/console.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { eventually, jobBody, startTestService, type TestService } from '../support/service.js';

const browserAt = chromiumPath();
const skip = browserAt.path === null && process.env.CI !== 'true' ? browserAt.why : false;
const SCREENSHOTS = process.env.CONSOLE_SCREENSHOTS;

const HOSTILE_PAYLOAD = { note: '<script>window.__pwned = "payload"</script>', img: '<img src=x onerror="window.__pwned = \'payload-img\'">' };
const HOSTILE_BODY = '<img src=x onerror="window.__pwned = \'response\'"><script>window.__pwned = "response-script"</script>';

describe('the web console', { skip }, () => {
  let svc: TestService;
  let rx: Receiver;
  let browser: Browser;
  let page: Page;
  let failing = true;
  const key = generateKey().key;
  const auth = { authorization: `Bearer ${key}` };
  const dialogs: string[] = [];
  const cspViolations: string[] = [];

  before(async () => {
    assert.ok(browserAt.path, browserAt.why);
    ensureConsoleBuilt();
    rx = await startReceiver((_req, res) => {
      if (failing) res.writeHead(500, { 'content-type': 'text/html' }).end(HOSTILE_BODY);
      else res.writeHead(200).end('ok');
    });
    // a circuit opens after 3 failures in a row (the replays below fail 2 at most) and stays open a
    // minute unless reset by hand
    svc = await startTestService({ API_KEYS: `*:${key}`, CIRCUIT_FAILURE_THRESHOLD: '3', CIRCUIT_COOLDOWN_MS: '60000' });
    browser = await chromium.launch({ executablePath: browserAt.path, args: ['--no-sandbox', '--disable-gpu'] });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
  });
  after(async () => {
    await browser?.close();
    await svc?.cleanup();
    await rx?.close();
  });

  async function shot(name: string): Promise<void> {
    if (SCREENSHOTS) await page.screenshot({ path: `${SCREENSHOTS}/console-${name}.png`, fullPage: false });
  }

  it('is served under a strict Content-Security-Policy', async () => {
    const res = await fetch(`${svc.url}/console/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-security-policy'), CONSOLE_CSP);
    const html = await res.text();
    assert.doesNotMatch(html, /<script>(?!<\/script>)|<script(?![^>]*\bsrc=)[^>]*>|style=/, 'no inline script or style');
  });

  it('asks for a key, and then shows the overview', async () => {
    await page.goto(`${svc.url}/console/`);
    await page.getByLabel('API key').fill('pg_wrong_key_wrong_key_wrong_key_wrong_key_0');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: '401 unauthorized' }).waitFor();
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.getByText('Deliveries:').waitFor();
    assert.ok(!page.url().includes(key), 'the key is not in the URL');
    assert.deepEqual(await page.context().cookies(), [], 'no cookie');
    assert.equal(await page.evaluate("sessionStorage.getItem('pulsegate.api-key')"), key, 'kept for the tab');
  });

  let jobId = '';
  it('lists a job that failed, and shows its attempts with the receiver answer as text', async () => {
    const res = await svc.post('/v1/jobs', jobBody(`${rx.url}/hook`, { payload: HOSTILE_PAYLOAD, retry: { max_attempts: 1 } }), auth);
    assert.equal(res.status, 201);
    jobId = ((await res.json()) as { id: string }).id;
    await eventually(async () => (await svc.store.getJob(jobId))?.status === 'failed', 10_000);

    await page.getByRole('link', { name: 'Jobs' }).click();
    await page.getByLabel('Status').selectOption('failed');
    await page.getByRole('link', { name: jobId }).click();
    await page.getByRole('heading', { name: `Job ${jobId}` }).waitFor();
    const attempts = page.getByTestId('attempts');
    await attempts.getByText('HTTP 500').waitFor();
    assert.ok((await attempts.textContent())?.includes(HOSTILE_BODY), 'the response body shown as text');
    assert.ok((await page.getByTestId('payload').textContent())?.includes(JSON.stringify(HOSTILE_PAYLOAD.note)), 'the payload shown as text');
    assert.equal(await page.locator('main img').count(), 0, 'no element made from the markup');
    await shot('job');
  });

  it('replays the job from the dead-letter queue after a confirmation, and it succeeds', async () => {
    failing = false;
    await page.getByRole('link', { name: 'Dead-letter queue' }).click();
    await page.getByLabel(`select ${jobId}`).check();
    await page.getByRole('button', { name: 'Replay selected' }).click();
    const confirm = page.getByRole('dialog');
    await confirm.getByText(`Replay 1 job to ${new URL(rx.url).origin}?`).waitFor();
    await confirm.getByRole('button', { name: 'Replay 1' }).click();
    await page.getByRole('status').filter({ hasText: 'Replayed 1 job' }).waitFor();
    await eventually(async () => (await svc.store.getJob(jobId))?.status === 'success', 10_000);
    await page.goto(`${svc.url}/console/#/jobs/${jobId}`);
    await page.getByTestId('job-status').filter({ hasText: 'success' }).waitFor();
    await page.getByTestId('attempts').getByText('HTTP 200').waitFor();
  });

  it("shows a job's trace id, and the traceparent its deliveries carry", async () => {
    failing = false;
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await svc.post('/v1/jobs', jobBody(`${rx.url}/traced`, { tenant_id: 'traced' }), { ...auth, traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
    const { id } = (await res.json()) as { id: string };
    const untraced = (await (await svc.post('/v1/jobs', jobBody(`${rx.url}/untraced`, { tenant_id: 'traced' }), auth)).json()) as { id: string };
    await page.goto(`${svc.url}/console/#/jobs/${id}`);
    await page.getByTestId('trace-id').filter({ hasText: traceId }).waitFor();
    await page.getByRole('row', { name: /traceparent/ }).filter({ hasText: `00-${traceId}-` }).waitFor();
    await shot('job-trace');
    await page.goto(`${svc.url}/console/#/jobs/${untraced.id}`);
    await page.getByRole('heading', { name: `Job ${untraced.id}` }).waitFor();
    assert.equal(await page.getByTestId('trace-id').textContent(), 'none');
    assert.equal(await page.getByRole('row', { name: /traceparent/ }).count(), 0);
  });

  it('replays every failed job matching a filter, after a dry run says how many and where', async () => {
    failing = true;
    const ids: string[] = [];
    for (const n of [1, 2]) {
      const res = await svc.post('/v1/jobs', jobBody(`${rx.url}/bulk`, { tenant_id: 'bulk', payload: { n }, retry: { max_attempts: 1 } }), auth);
      ids.push(((await res.json()) as { id: string }).id);
    }
    await eventually(async () => (await Promise.all(ids.map((id) => svc.store.getJob(id)))).every((j) => j?.status === 'failed'), 10_000);
    failing = false;
    await page.goto(`${svc.url}/console/#/dlq`);
    await page.getByLabel('Tenant').fill('bulk');
    await page.getByRole('link', { name: ids[0]! }).waitFor();
    await page.getByRole('button', { name: 'Replay all matching…' }).click();
    const confirm = page.getByRole('dialog');
    await confirm.getByText('Replay all 2 failed jobs of tenant bulk?').waitFor();
    await confirm.getByText(`${new URL(rx.url).origin}: 2`).waitFor();
    await shot('dlq');
    await confirm.getByRole('button', { name: 'Replay 2' }).click();
    await page.getByRole('status').filter({ hasText: 'Replayed 2 jobs' }).waitFor();
    await eventually(async () => (await Promise.all(ids.map((id) => svc.store.getJob(id)))).every((j) => j?.status === 'success'), 10_000);
  });

  it('shows a destination whose circuit opened, and closes it by hand', async () => {
    // a port nothing listens on: connection refused, the kind of failure that opens a circuit
    const gone = await startReceiver();
    const deadUrl = `${gone.url}/hook`;
    await gone.close();
    for (const n of [1, 2, 3]) {
      const res = await svc.post('/v1/jobs', jobBody(deadUrl, { tenant_id: 'dead', payload: { n }, retry: { max_attempts: 10, base_delay_ms: 50, max_delay_ms: 100 } }), auth);
      assert.equal(res.status, 201);
    }
    const origin = new URL(deadUrl).origin;
    await page.goto(`${svc.url}/console/#/destinations`);
    const row = page.getByTestId(`destination dead ${origin}`);
    await row.getByText('open', { exact: true }).waitFor({ timeout: 15_000 });
    await shot('destinations');
    await page.goto(`${svc.url}/console/#/overview`);
    await page.getByRole('heading', { name: 'Open circuits' }).waitFor();
    await page.getByText(`dead → ${origin}`).waitFor();
    await page.goto(`${svc.url}/console/#/destinations`);
    await page.getByRole('button', { name: `Reset circuit of dead ${origin}` }).click();
    await page.getByRole('status').filter({ hasText: `Circuit of dead → ${origin} is` }).waitFor();
    const res = await svc.request('/v1/jobs/cancel', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ tenant_id: 'dead' }) });
    assert.equal(res.status, 200, await res.text());
  });

  it('charts deliveries on the overview as they happen', async () => {
    await page.goto(`${svc.url}/console/#/overview`);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    for (let i = 0; i < 24; i++) {
      const res = await svc.post('/v1/jobs', jobBody(`${rx.url}/hook`, { payload: { i } }), auth);
      assert.equal(res.status, 201);
      await new Promise((r) => setTimeout(r, 250));
    }
    // 4 deliveries a second: the chart's peak passes the floor of 1 it starts from
    await page.getByRole('img', { name: /^Deliveries, last [\d.]+ \/s, peak ([2-9]|\d\d)/ }).waitFor({ timeout: 10_000 });
    await shot('overview');
  });

  it("shows a job's ordering key, whether it waits for it, and lists the key's jobs", async () => {
    const hook = `${rx.url}/hook`;
    // the key's first job runs in an hour, so the second waits for its key
    const first = await svc.post('/v1/jobs', jobBody(hook, { ordering_key: 'order-42', delay_ms: 3_600_000, payload: { step: 'created' } }), auth);
    assert.equal(first.status, 201);
    const second = await svc.post('/v1/jobs', jobBody(hook, { ordering_key: 'order-42', payload: { step: 'paid' } }), auth);
    assert.equal(second.status, 201);
    const [firstId, secondId] = [((await first.json()) as { id: string }).id, ((await second.json()) as { id: string }).id];
    await page.goto(`${svc.url}/console/#/jobs/${secondId}`);
    await page.getByRole('heading', { name: `Job ${secondId}` }).waitFor();
    await page.getByTestId('ordering-key').filter({ hasText: 'order-42 · waiting for earlier jobs of this key to end' }).waitFor();
    await page.goto(`${svc.url}/console/#/jobs/${firstId}`);
    await page.getByTestId('ordering-key').filter({ hasText: 'order-42 · its turn' }).waitFor();
    await page.getByRole('link', { name: 'Jobs' }).click();
    await page.getByLabel('Ordering key').fill('order-42');
    await page.getByRole('link', { name: secondId }).waitFor();
    await page.getByRole('link', { name: firstId }).waitFor();
    for (const id of [firstId, secondId]) await svc.post(`/v1/jobs/${id}/cancel`, {}, auth);
  });

  it('lists schedules with their next tick, and pauses one', async () => {
    const res = await svc.post('/v1/schedules', { cron: '30 2 * * *', time_zone: 'America/New_York', job: jobBody(`${rx.url}/nightly`, { type: 'report.nightly' }) }, auth);
    assert.equal(res.status, 201, await res.clone().text());
    const s = (await res.json()) as { id: string };
    await page.goto(`${svc.url}/console/#/schedules`);
    const row = page.getByTestId(`schedule ${s.id}`);
    await row.getByText('30 2 * * *').waitFor();
    await row.getByText('America/New_York').waitFor();
    await row.getByText('report.nightly').waitFor();
    await row.getByText('active', { exact: true }).waitFor();
    await shot('schedules');
    await page.getByRole('button', { name: `Pause schedule ${s.id}` }).click();
    await page.getByRole('status').filter({ hasText: `Schedule ${s.id} is paused` }).waitFor();
    await row.getByText('paused', { exact: true }).waitFor();
    assert.equal(((await (await svc.request(`/v1/schedules/${s.id}`, { headers: auth })).json()) as { status: string }).status, 'paused');
  });

  it('ran nothing a job or a receiver wrote, and broke no CSP rule', async () => {
    assert.equal(await page.evaluate('window.__pwned'), undefined);
    assert.deepEqual(dialogs, []);
    assert.deepEqual(cspViolations, []);
  });

  it('shows an API error as the API words it', async () => {
    const missing = '01a22fd1-230a-7b20-a6ce-0606ed96f440';
    await page.goto(`${svc.url}/console/#/jobs/${missing}`);
    await page.getByRole('alert').filter({ hasText: '404 not_found: job not found' }).waitFor();
  });
});
