// One linear pass over a request body's JSON text, before and beside JSON.parse, for what the parse
// itself does not tell: how deep it nests, whether a number overflows a double, and the exact text
// of one top-level member (the payload, kept byte for byte instead of re-encoded from doubles).
//
// Every character is looked at a bounded number of times, whatever the input: no regular
// expression runs over the body (a backtracking one rescanned digit runs, ~300 steps per byte).
// On text that is not valid JSON the answers mean nothing; the caller parses too and refuses it.

export interface JsonScan {
  /** Deepest nesting of arrays and objects. */
  depth: number;
  /** Some number token is too large for a double (it would parse to ±Infinity). */
  overflows: boolean;
  /** [start, end) of the last top-level member named `member`, trimmed, or null. */
  member: [number, number] | null;
  /** Where each key spelled `__proto__` (escapes decoded) starts, at any depth. */
  protoKeys: number[];
}

/** `"__proto__"` with its quotes: a key of that length (or with an escape) is decoded and compared. */
const PROTO_TOKEN_LENGTH = 11;

const QUOTE = 34;
const BACKSLASH = 92;
const COLON = 58;
const COMMA = 44;
const OPEN_OBJECT = 123;
const CLOSE_OBJECT = 125;
const OPEN_ARRAY = 91;
const CLOSE_ARRAY = 93;

/** The longest number token that cannot overflow without an exponent: 309 digits is past 1.8e308. */
const SAFE_PLAIN_NUMBER_LENGTH = 300;

function isJsonSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

function isNumberChar(c: number): boolean {
  // digits, '.', '-', '+', 'e', 'E'
  return (c >= 48 && c <= 57) || c === 46 || c === 45 || c === 43 || c === 101 || c === 69;
}

/** The decoded text of a JSON string token (quotes included), or null when it is not one. */
function keyText(token: string): string | null {
  if (token.indexOf('\\') < 0) return token.slice(1, -1);
  try {
    const v: unknown = JSON.parse(token);
    return typeof v === 'string' ? v : null;
  } catch {
    return null;
  }
}

export function scanJson(text: string, member: string): JsonScan {
  let depth = 0;
  let maxDepth = 0;
  let overflows = false;
  let found: [number, number] | null = null;
  const protoKeys: number[] = [];
  // top-level object bookkeeping
  let expectKey = false;
  let keyStart = -1;
  let currentIsMember = false;
  let valueStart = -1;
  let awaitingValue = false;

  const closeValue = (end: number) => {
    if (currentIsMember && valueStart >= 0) {
      let e = end;
      while (e > valueStart && isJsonSpace(text.charCodeAt(e - 1))) e--;
      found = [valueStart, e];
    }
    currentIsMember = false;
    valueStart = -1;
  };

  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (awaitingValue && !isJsonSpace(c)) {
      valueStart = i;
      awaitingValue = false;
    }
    if (c === QUOTE) {
      const start = i;
      let escaped = false;
      for (i++; i < n; i++) {
        const s = text.charCodeAt(i);
        if (s === BACKSLASH) {
          escaped = true;
          i++;
        } else if (s === QUOTE) break;
      }
      if (depth === 1 && expectKey && keyStart < 0) {
        keyStart = start;
        currentIsMember = keyText(text.slice(start, i + 1)) === member;
      }
      const len = i + 1 - start;
      if (len === PROTO_TOKEN_LENGTH || (escaped && len > PROTO_TOKEN_LENGTH)) {
        // a key is a string followed by a colon; the whitespace looked at here is looked at once more
        let j = i + 1;
        while (j < n && isJsonSpace(text.charCodeAt(j))) j++;
        if (text.charCodeAt(j) === COLON && keyText(text.slice(start, i + 1)) === '__proto__') protoKeys.push(start);
      }
      continue;
    }
    if (isNumberChar(c)) {
      const start = i;
      while (i + 1 < n && isNumberChar(text.charCodeAt(i + 1))) i++;
      const len = i + 1 - start;
      if (!overflows && len > 1) {
        let hasExponent = false;
        for (let j = start; j <= i; j++) {
          const d = text.charCodeAt(j);
          if (d === 101 || d === 69) hasExponent = true;
        }
        if ((hasExponent || len > SAFE_PLAIN_NUMBER_LENGTH) && !Number.isFinite(Number(text.slice(start, i + 1)))) {
          overflows = true;
        }
      }
      continue;
    }
    switch (c) {
      case OPEN_OBJECT:
      case OPEN_ARRAY:
        if (++depth > maxDepth) maxDepth = depth;
        if (depth === 1 && c === OPEN_OBJECT) expectKey = true;
        break;
      case CLOSE_OBJECT:
      case CLOSE_ARRAY:
        if (depth === 1) closeValue(i);
        depth--;
        break;
      case COLON:
        if (depth === 1) {
          expectKey = false;
          keyStart = -1;
          awaitingValue = true;
        }
        break;
      case COMMA:
        if (depth === 1) {
          closeValue(i);
          expectKey = true;
          keyStart = -1;
        }
        break;
    }
  }
  return { depth: maxDepth, overflows, member: found, protoKeys };
}

/** The JSON text with the whitespace between tokens removed; strings are kept exactly as written. */
export function compactJson(text: string): string {
  let parts: string[] | null = null;
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      for (i++; i < text.length; i++) {
        const s = text.charCodeAt(i);
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
    } else if (isJsonSpace(c)) {
      if (i > from) (parts ??= []).push(text.slice(from, i));
      else parts ??= [];
      from = i + 1;
    }
  }
  if (parts === null) return text;
  if (from < text.length) parts.push(text.slice(from));
  return parts.join('');
}

/** [start, end) of each element of the array whose text is text[range[0], range[1]), trimmed. */
export function arrayElements(text: string, range: [number, number]): [number, number][] {
  const [from, to] = range;
  const out: [number, number][] = [];
  if (text.charCodeAt(from) !== OPEN_ARRAY) return out;
  let depth = 0;
  let start = -1;
  const close = (end: number) => {
    let e = end;
    while (e > start && isJsonSpace(text.charCodeAt(e - 1))) e--;
    if (start >= 0 && e > start) out.push([start, e]);
    start = -1;
  };
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (depth === 1 && start < 0 && !isJsonSpace(c) && c !== COMMA && c !== CLOSE_ARRAY) start = i;
    if (c === QUOTE) {
      for (i++; i < to; i++) {
        const s = text.charCodeAt(i);
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) depth++;
    else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      if (depth === 1) close(i);
      depth--;
    } else if (c === COMMA && depth === 1) close(i);
  }
  return out;
}

/**
 * The exact text (whitespace between tokens removed) of the `payload` member of each element of the
 * top-level array `member`, by position; null for an element that is not an object or has none.
 */
export function elementPayloads(text: string, member: string): (string | null)[] {
  const m = scanJson(text, member).member;
  if (m === null) return [];
  return arrayElements(text, m).map(([s, e]) => {
    if (text.charCodeAt(s) !== OPEN_OBJECT) return null;
    const element = text.slice(s, e);
    const p = scanJson(element, 'payload').member;
    return p === null ? null : compactJson(element.slice(p[0], p[1]));
  });
}
