// The SSRF guard: keeps webhook deliveries away from loopback, private networks, link-local cloud
// metadata (169.254.169.254) and every other address that is not plain public unicast.
//
// It checks twice, because a URL checked once can still be turned against us:
// - checkUrl() at job creation rejects what is visibly wrong: a scheme other than http(s), userinfo,
//   `localhost`, and literal IPs in any spelling (WHATWG URL parsing already turned 2130706433,
//   0177.0.0.1, 0x7f.1 and 127.1 into 127.0.0.1, so we judge the normalized host).
// - lookup() is handed to undici as the socket's resolver, so the address actually connected to is
//   checked at connect time: a name that resolves to 127.0.0.1, or answers differently by the time we
//   deliver (DNS rebinding), is refused with DestinationBlockedError. Node skips lookup() for literal
//   IPs, so the dispatcher runs checkUrl() again just before sending.

import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { BLOCKED_CODE } from './classify.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

export type UrlCheck = { ok: true } | { ok: false; reason: string };

export interface DestinationGuard {
  /** Whether a destination URL may be accepted (job creation) and sent to (delivery). */
  checkUrl(url: string): UrlCheck;
  /** Whether a connection to this IP address (v4 or v6 text) is allowed. */
  isAddressAllowed(ip: string): boolean;
  /** A dns.lookup-compatible resolver that fails with DestinationBlockedError on a blocked answer. */
  lookup: LookupFunction;
}

export interface DestinationGuardOptions {
  /** Allow every address (tests, internal deployments). */
  allowPrivate: boolean;
  /** CIDRs opened even though they are not public, e.g. ["127.0.0.0/8", "::1/128"]. */
  allowedCidrs: string[];
  /** The resolver to check answers from; dns.lookup by default. */
  lookup?: LookupFunction;
}

/** A destination resolved to, or named, an address the guard refuses. Never worth retrying. */
export class DestinationBlockedError extends Error {
  readonly code = BLOCKED_CODE;
  constructor(
    readonly host: string,
    readonly address: string,
  ) {
    super(`destination ${host} resolves to ${address}, which is not a public address`);
    this.name = 'DestinationBlockedError';
  }
}

// Blocked in addition to what ipaddr.js already calls non-unicast, in case its tables ever shrink,
// and for IPv4-compatible IPv6 (::a.b.c.d, deprecated) which ipaddr.js calls unicast.
const EXTRA_BLOCKED: [Address, number][] = [
  ipaddr.parseCIDR('0.0.0.0/8'),
  ipaddr.parseCIDR('100.64.0.0/10'),
  ipaddr.parseCIDR('198.18.0.0/15'),
  ipaddr.parseCIDR('::/96'),
];

/** Parses an IP address text (optionally bracketed, optionally with a %zone); null if it is not one. */
export function parseAddress(ip: string): Address | null {
  let s = ip.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  // Only the canonical dotted-quad counts as IPv4 here: inet_aton spellings were normalized by the
  // URL parser already, and a resolver never returns them.
  if (ipaddr.IPv4.isValidFourPartDecimal(s)) return ipaddr.IPv4.parse(s);
  if (ipaddr.IPv6.isValid(s)) return ipaddr.IPv6.parse(s);
  return null;
}

/** ipaddr.js's range name for an address ('unicast' is the only one the guard lets through). */
export function addressRange(addr: Address): string {
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
    return addressRange((addr as ipaddr.IPv6).toIPv4Address());
  }
  const range = addr.range();
  if (range !== 'unicast') return range;
  return EXTRA_BLOCKED.some((cidr) => cidr[0].kind() === addr.kind() && addr.match(cidr)) ? 'reserved' : 'unicast';
}

function inCidrs(addr: Address, cidrs: readonly [Address, number][]): boolean {
  const forms: Address[] = [addr];
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) forms.push((addr as ipaddr.IPv6).toIPv4Address());
  return forms.some((a) => cidrs.some((cidr) => cidr[0].kind() === a.kind() && a.match(cidr)));
}

function parseCidrs(list: readonly string[]): [Address, number][] {
  return list.map((c) => {
    try {
      return ipaddr.parseCIDR(c.trim());
    } catch {
      throw new Error(`invalid CIDR in allowed destination ranges: ${JSON.stringify(c)} (expected e.g. 10.0.0.0/8 or fd00::/8)`);
    }
  });
}

function isLocalhostName(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost');
}

export function createDestinationGuard(opts: DestinationGuardOptions): DestinationGuard {
  const allowed = parseCidrs(opts.allowedCidrs);
  const resolve = opts.lookup ?? (dnsLookup as unknown as LookupFunction);

  function isAddressAllowed(ip: string): boolean {
    if (opts.allowPrivate) return true;
    const addr = parseAddress(ip);
    if (!addr) return false;
    return inCidrs(addr, allowed) || addressRange(addr) === 'unicast';
  }

  function checkUrl(raw: string): UrlCheck {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return { ok: false, reason: 'not a valid URL' };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, reason: 'only http and https URLs are allowed' };
    if (url.username !== '' || url.password !== '') return { ok: false, reason: 'URLs with credentials (user:pass@) are not allowed' };
    const host = url.hostname.toLowerCase().replace(/\.$/, '');
    if (host === '') return { ok: false, reason: 'URL has no host' };
    if (opts.allowPrivate) return { ok: true };
    if (isLocalhostName(host)) {
      // Refused by name: it is loopback on every sane resolver. The connect-time check still applies.
      return isAddressAllowed('127.0.0.1') || isAddressAllowed('::1') ? { ok: true } : { ok: false, reason: `${host} is a loopback name` };
    }
    const addr = host.startsWith('[') || ipaddr.IPv4.isValidFourPartDecimal(host) ? parseAddress(host) : null;
    if (host.startsWith('[') && !addr) return { ok: false, reason: 'invalid IPv6 address' };
    if (addr && !isAddressAllowed(addr.toString())) {
      return { ok: false, reason: `${addr.toString()} is not a public address (${addressRange(addr)})` };
    }
    return { ok: true };
  }

  const lookup: LookupFunction = (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (err, answer, family) => {
      if (err) return callback(err, '');
      const addresses: LookupAddress[] = Array.isArray(answer) ? answer : [{ address: answer, family: family ?? 4 }];
      // Every answer must pass: the socket may try any of them (happy eyeballs).
      const bad = addresses.find((a) => !isAddressAllowed(a.address));
      if (bad) return callback(new DestinationBlockedError(hostname, bad.address) as NodeJS.ErrnoException, '');
      const first = addresses[0];
      if (!first) {
        const e = new Error(`lookup ${hostname} returned no addresses`) as NodeJS.ErrnoException;
        e.code = 'ENOTFOUND';
        return callback(e, '');
      }
      if ((options as LookupOptions).all) return callback(null, addresses);
      callback(null, first.address, first.family);
    });
  };

  return { checkUrl, isAddressAllowed, lookup };
}
