// The one rule for a job's own headers, read by the API (refused at creation) and by the dispatcher
// (so what was accepted is exactly what is sent).
//
// - Framing and hop-by-hop headers belong to the HTTP connection, and webhook-* carries the signature
//   and what it covers: a job may not name them.
// - Content-Type may be given only as a JSON media type (application/json or application/<x>+json,
//   e.g. application/cloudevents+json), at most with charset=utf-8: the body is always the payload's
//   JSON text, and a receiver told text/html would be told a lie.
// - User-Agent may be given: it replaces PulseGate/<version>.

const RESERVED = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'upgrade',
  'te',
  'trailer',
  'expect',
]);

/** A header name (any case) a job may not set. */
export function isReservedHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return RESERVED.has(lower) || lower.startsWith('webhook-');
}

/** A Content-Type value that describes a UTF-8 JSON body. */
export function isJsonContentType(value: string): boolean {
  const [essence = '', ...params] = value.split(';');
  const type = essence.trim().toLowerCase();
  const json = type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json') && !type.includes(' '));
  if (!json) return false;
  return params.every((p) => {
    const [k = '', v = ''] = p.split('=');
    return k.trim().toLowerCase() === 'charset' && v.trim().replace(/^"|"$/g, '').toLowerCase() === 'utf-8';
  });
}

/** Whether a job's header is sent as given: the API refuses the others; rows older than a rule are skipped. */
export function isSendableHeader(name: string, value: string): boolean {
  if (isReservedHeader(name)) return false;
  return name.toLowerCase() !== 'content-type' || isJsonContentType(value);
}
