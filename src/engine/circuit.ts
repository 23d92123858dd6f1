/*
 * The circuit breaker of one destination lane (tenant, origin). States and transitions:
 *
 *   closed ──(failureThreshold consecutive "down" results)──────────▶ open (cool-down = cooldownMs)
 *   open ──(cool-down over, when the lane next asks)─────────────────▶ half_open: ONE probe attempt may go
 *   half_open ──(the probe shows the receiver up)───────────────────▶ closed (cool-down back to cooldownMs)
 *   half_open ──(the probe fails "down")────────────────────────────▶ open (cool-down doubled, ≤ cooldownMaxMs)
 *   open | half_open ──(any attempt shows the receiver up)───────────▶ closed
 *   any ──(reset by hand)────────────────────────────────────────────▶ closed
 *
 * "Down" means the receiver is not answering usefully: a connect, DNS or TLS error, a timeout, or a
 * 5xx. Any other HTTP answer (2xx, 3xx, 4xx, 429 too) means it is up: it resets the count. A result
 * that says nothing about the receiver (the SSRF guard refused the address) is neutral. Results of
 * attempts that were already in flight when the circuit opened do not extend it.
 *
 * Time comes in as `now`; the circuit has no timers of its own (its lane arms one through the Clock).
 */

import type { DeliveryResult } from '../domain/attempt.js';

export type CircuitState = 'closed' | 'open' | 'half_open';
export type Verdict = 'up' | 'down' | 'neutral';

export interface CircuitPolicy {
  /** Consecutive "down" results that open the circuit (CIRCUIT_FAILURE_THRESHOLD). */
  failureThreshold: number;
  /** First cool-down before a probe (CIRCUIT_COOLDOWN_MS). */
  cooldownMs: number;
  /** The cool-down doubles after each failed probe, up to this (CIRCUIT_COOLDOWN_MAX_MS). */
  cooldownMaxMs: number;
}

export type CircuitChange = (from: CircuitState, to: CircuitState) => void;

/** What an attempt's result says about the receiver's health. */
export function verdictOf(result: DeliveryResult): Verdict {
  if (result.outcome === 'success') return 'up';
  if (result.error_kind === 'blocked') return 'neutral';
  if (result.status_code !== null) return result.status_code >= 500 ? 'down' : 'up';
  return 'down'; // timeout, connect, dns, tls: no answer at all
}

export class Circuit {
  state: CircuitState = 'closed';
  /** Consecutive "down" results. */
  failures = 0;
  /** When an open circuit lets a probe out. */
  openUntil = 0;
  /** The current cool-down (grows while probes fail). */
  cooldown: number;
  /** A probe attempt is in flight (half_open lets out one at a time). */
  probing = false;

  constructor(
    private readonly policy: CircuitPolicy,
    private readonly onChange: CircuitChange = () => {},
  ) {
    this.cooldown = policy.cooldownMs;
  }

  /**
   * Milliseconds before an attempt may go: 0 now, Infinity while a probe is out (a result will wake
   * the lane). An open circuit whose cool-down is over turns half_open here.
   */
  waitMs(now: number): number {
    if (this.state === 'closed') return 0;
    if (this.state === 'open') {
      if (now < this.openUntil) return this.openUntil - now;
      this.move('half_open');
    }
    return this.probing ? Infinity : 0;
  }

  /** An attempt goes out now (after waitMs said 0). Returns true when it is the probe. */
  admit(): boolean {
    if (this.state !== 'half_open') return false;
    this.probing = true;
    return true;
  }

  /** The result of an attempt; `probe` says whether it was the one admit() called the probe. */
  record(verdict: Verdict, probe: boolean, now: number): void {
    if (probe) this.probing = false;
    if (verdict === 'up') {
      this.failures = 0;
      if (this.state !== 'closed') this.close();
      return;
    }
    if (verdict === 'neutral') return;
    this.failures++;
    if (this.state === 'closed' && this.failures >= this.policy.failureThreshold) this.open(now, this.policy.cooldownMs);
    else if (this.state === 'half_open' && probe) this.open(now, Math.min(this.policy.cooldownMaxMs, this.cooldown * 2));
  }

  /**
   * Takes the state another instance left (a destination handed over, see lane-leases.ts), without
   * calling onChange: nothing changed for the receiver. A probe the other instance had out is not
   * ours to wait for: half_open lets the next attempt be the probe.
   */
  restore(s: { state: CircuitState; failures: number; openUntil: number; cooldown: number | null }): void {
    this.state = s.state;
    this.failures = s.failures;
    this.openUntil = s.state === 'open' ? s.openUntil : 0;
    this.cooldown = s.cooldown ?? this.policy.cooldownMs;
    this.probing = false;
  }

  /** Closes the circuit by hand (POST /v1/destinations/{id}/reset). Returns the state it was in. */
  reset(): CircuitState {
    const was = this.state;
    this.failures = 0;
    this.probing = false;
    if (was !== 'closed') this.close();
    return was;
  }

  private open(now: number, cooldown: number): void {
    this.cooldown = cooldown;
    this.openUntil = now + cooldown;
    this.move('open');
  }

  private close(): void {
    this.cooldown = this.policy.cooldownMs;
    this.openUntil = 0;
    this.move('closed');
  }

  private move(to: CircuitState): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    this.onChange(from, to);
  }
}
