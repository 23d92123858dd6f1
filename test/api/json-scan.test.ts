// The body scanner: one linear pass that finds nesting depth, overflowing numbers, __proto__ keys and
// the exact text of one top-level member, agreeing with JSON.parse on every valid text.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compactJson, elementPayloads, scanJson } from '../../src/api/json-scan.js';

const memberText = (text: string, name = 'payload') => {
  const m = scanJson(text, name).member;
  return m === null ? null : text.slice(m[0], m[1]);
};

describe('scanJson', () => {
  it('finds the text of a top-level member, whatever its value', () => {
    for (const value of ['1', '-2.50e+3', '"a}\\"b,"', 'true', 'null', '{"x":[1,{"payload":2}]}', '[ 1 , 2 ]', '9007199254740993']) {
      assert.equal(memberText(`{"a":1, "payload" : ${value} , "b":{"payload":3}}`), value);
      assert.equal(memberText(`{"payload":${value}}`), value);
    }
  });

  it('takes the last of duplicate members, as JSON.parse does', () => {
    const text = '{"payload":1,"payload":{"x":2}}';
    assert.equal(memberText(text), '{"x":2}');
    assert.deepEqual(JSON.parse(text).payload, { x: 2 });
  });

  it('decodes escaped key names before comparing', () => {
    assert.equal(memberText('{"p\\u0061yload":[3]}'), '[3]');
    assert.equal(memberText('{"payload2":1,"xpayload":2}'), null);
    assert.equal(memberText('{"nested":{"payload":1}}'), null);
  });

  it('measures nesting depth, strings skipped', () => {
    assert.equal(scanJson('{"a":[[{"b":"[[[[["}]]]}', '').depth, 4);
    assert.equal(scanJson(`${'['.repeat(100)}${']'.repeat(100)}`, '').depth, 100);
  });

  it('flags numbers that overflow a double and no others', () => {
    for (const n of ['1e309', '-1E+400', '1.7976931348623159e308', '9'.repeat(309)]) {
      assert.equal(scanJson(`{"n":${n}}`, '').overflows, true, n);
      assert.equal(Number.isFinite(JSON.parse(`{"n":${n}}`).n), false, n);
    }
    for (const n of ['1e308', '1e-400', `0.${'0'.repeat(500)}1`, '9'.repeat(308), '123']) {
      assert.equal(scanJson(`{"n":${n}}`, '').overflows, false, n);
    }
    assert.equal(scanJson('{"s":"1e999"}', '').overflows, false, 'inside a string');
  });

  it('finds __proto__ keys at any depth, escaped or not, and not __proto__ values', () => {
    const text = '{"a":{"__proto__":1},"b":[{"\\u005f_proto__" : 2}],"c":"__proto__"}';
    const at = scanJson(text, '').protoKeys;
    assert.equal(at.length, 2);
    assert.ok(at.every((i) => text[i] === '"'));
  });
});

describe('compactJson', () => {
  it('drops whitespace between tokens and keeps strings byte for byte', () => {
    assert.equal(compactJson('{ "a" : [ 1 ,\n\t2 ] , "s" : " x \\" y " }'), '{"a":[1,2],"s":" x \\" y "}');
    const same = '{"a":1}';
    assert.equal(compactJson(same), same);
  });
});

describe('elementPayloads', () => {
  it("gives each array element's payload text by position, null where there is none", () => {
    const text = '{"jobs": [ {"payload": { "n" : 1 } , "x":[1,2]}, 7, {"a":{"payload":0}}, {"payload":"[,]"} ,{"payload":9007199254740993} ] }';
    assert.deepEqual(elementPayloads(text, 'jobs'), ['{"n":1}', null, null, '"[,]"', '9007199254740993']);
    assert.deepEqual(elementPayloads('{"jobs":[]}', 'jobs'), []);
    assert.deepEqual(elementPayloads('{"jobs":{"payload":1}}', 'jobs'), []);
  });
});
