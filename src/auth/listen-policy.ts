// Which HOST values keep the listener on this machine.

import ipaddr from 'ipaddr.js';

/** True for localhost, 127.0.0.0/8 and ::1 (also IPv4-mapped); false for 0.0.0.0, ::, and any other name or address. */
export function isLoopbackHost(host: string): boolean {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h === 'localhost') return true;
  // Canonical spellings only: 0177.1 and friends are refused rather than second-guessed.
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  if (ipaddr.IPv4.isValidFourPartDecimal(h)) addr = ipaddr.IPv4.parse(h);
  else if (ipaddr.IPv6.isValid(h)) addr = ipaddr.IPv6.parse(h);
  else return false;
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  return addr.range() === 'loopback';
}
