import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Circuit, verdictOf, type CircuitState } from '../../src/engine/circuit.js';
import type { DeliveryResult } from '../../src/domain/attempt.js';

const policy = { failureThreshold: 3, cooldownMs: 1000, cooldownMaxMs: 3000 };

function circuit(): { c: Circuit; changes: string[] } {
  const changes: string[] = [];
  const c = new Circuit(policy, (from: CircuitState, to: CircuitState) => changes.push(`${from}>${to}`));
  return { c, changes };
}

const timeout: DeliveryResult = { outcome: 'retryable_error', error_kind: 'timeout', status_code: null, error: 't', response_body: null, retry_after_ms: null };
const http = (code: number): DeliveryResult =>
  code < 300
    ? { outcome: 'success', status_code: code, response_body: null }
    : { outcome: code >= 500 || code === 429 ? 'retryable_error' : 'permanent_error', error_kind: 'http', status_code: code, error: `HTTP ${code}`, response_body: null, retry_after_ms: null } as DeliveryResult;

describe('circuit breaker', () => {
  it('counts connect errors, timeouts and 5xx as down; any other answer as up; a refused address as neither', () => {
    assert.equal(verdictOf(timeout), 'down');
    assert.equal(verdictOf({ ...timeout, error_kind: 'connect' }), 'down');
    assert.equal(verdictOf(http(500)), 'down');
    assert.equal(verdictOf(http(503)), 'down');
    assert.equal(verdictOf(http(200)), 'up');
    assert.equal(verdictOf(http(404)), 'up');
    assert.equal(verdictOf(http(429)), 'up');
    assert.equal(verdictOf({ outcome: 'permanent_error', error_kind: 'blocked', status_code: null, error: 'b', response_body: null }), 'neutral');
  });

  it('opens after the threshold of consecutive down results, and a 4xx in between resets the count', () => {
    const { c, changes } = circuit();
    c.record('down', false, 0);
    c.record('down', false, 0);
    c.record('up', false, 0);
    c.record('down', false, 0);
    c.record('down', false, 0);
    assert.equal(c.state, 'closed');
    c.record('down', false, 10);
    assert.equal(c.state, 'open');
    assert.deepEqual(changes, ['closed>open']);
    assert.equal(c.waitMs(10), 1000, 'no attempt during the cool-down');
    assert.equal(c.waitMs(500), 510);
  });

  it('lets one probe out after the cool-down; a failed probe doubles the cool-down up to the cap', () => {
    const { c, changes } = circuit();
    for (let i = 0; i < 3; i++) c.record('down', false, 0);
    assert.equal(c.waitMs(1000), 0);
    assert.equal(c.state, 'half_open');
    assert.equal(c.admit(), true, 'the first attempt is the probe');
    assert.equal(c.waitMs(1000), Infinity, 'nothing else while the probe is out');
    c.record('down', true, 1100);
    assert.equal(c.state, 'open');
    assert.equal(c.waitMs(1100), 2000);
    assert.equal(c.waitMs(3100), 0);
    c.admit();
    c.record('down', true, 3100);
    assert.equal(c.waitMs(3100), 3000, 'capped');
    assert.equal(c.waitMs(6100), 0);
    c.admit();
    c.record('down', true, 6100);
    assert.equal(c.waitMs(6100), 3000);
    assert.deepEqual(changes, ['closed>open', 'open>half_open', 'half_open>open', 'open>half_open', 'half_open>open', 'open>half_open', 'half_open>open']);
  });

  it('closes when the probe succeeds, with the cool-down back to its start', () => {
    const { c } = circuit();
    for (let i = 0; i < 3; i++) c.record('down', false, 0);
    c.waitMs(1000);
    c.admit();
    c.record('down', true, 1000);
    c.waitMs(3000);
    c.admit();
    c.record('up', true, 3000);
    assert.equal(c.state, 'closed');
    assert.equal(c.failures, 0);
    assert.equal(c.waitMs(3000), 0);
    for (let i = 0; i < 3; i++) c.record('down', false, 4000);
    assert.equal(c.waitMs(4000), 1000, 'a new outage starts from the first cool-down');
  });

  it('ignores late failures of attempts sent before it opened, and closes on a late success', () => {
    const { c } = circuit();
    for (let i = 0; i < 3; i++) c.record('down', false, 0);
    c.record('down', false, 500);
    assert.equal(c.waitMs(500), 500, 'the cool-down is not extended');
    c.record('up', false, 600);
    assert.equal(c.state, 'closed');
  });

  it('a neutral probe result lets another probe go', () => {
    const { c } = circuit();
    for (let i = 0; i < 3; i++) c.record('down', false, 0);
    c.waitMs(1000);
    c.admit();
    c.record('neutral', true, 1000);
    assert.equal(c.state, 'half_open');
    assert.equal(c.waitMs(1000), 0);
  });

  it('closes by hand', () => {
    const { c, changes } = circuit();
    for (let i = 0; i < 3; i++) c.record('down', false, 0);
    assert.equal(c.reset(), 'open');
    assert.equal(c.state, 'closed');
    assert.equal(c.waitMs(0), 0);
    assert.deepEqual(changes, ['closed>open', 'open>closed']);
  });
});
