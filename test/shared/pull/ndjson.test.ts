/**
 * splitPage takes a page's records as NDJSON cut from the response bytes, validating them as strictly
 * as JSON.parse: each line is the element's own text and parses to the record JSON.parse gives, the
 * rest of the body is parsed, and anything it cannot take unchanged answers undefined (the caller then
 * parses the page whole). A seeded fuzz compares it with JSON.parse on mutated pages.
 */
import assert from 'node:assert/strict';
import { splitPage } from '../../../shared/pull/ndjson';
import { getPath } from '../../../shared/pull/paginate';

const isObject = (r: unknown): boolean => r !== null && typeof r === 'object' && !Array.isArray(r);

/** splitPage's answer, checked against JSON.parse; the lines when it split the page. */
function split(text: string, path: string): string[] | undefined {
  const s = splitPage(Buffer.from(text), path);
  if (!s) return undefined;
  const whole = JSON.parse(text) as unknown;
  const recs = getPath(whole, path) as unknown[];
  const out = s.ndjson.toString('utf8');
  const lines = out === '' ? [] : out.slice(0, -1).split('\n');
  assert.ok(out === '' || out.endsWith('\n'));
  assert.equal(s.count, recs.length);
  assert.deepEqual(
    lines.map((l) => JSON.parse(l) as unknown),
    recs,
  );
  // The rest of the body as JSON.parse gave it, with the records replaced by [].
  const rest = JSON.parse(text) as unknown;
  if (path === '') assert.deepEqual(s.envelope, []);
  else {
    const keys = path.split('.');
    const holder = getPath(rest, keys.slice(0, -1).join('.')) as Record<string, unknown>;
    holder[keys[keys.length - 1] as string] = [];
    assert.deepEqual(s.envelope, rest);
  }
  return lines;
}

describe('pull: splitPage', () => {
  it('splits at a top-level key, a nested path or the body itself', () => {
    assert.deepEqual(split('{"users":[{"id":1},{"id":2}],"total":2}', 'users'), ['{"id":1}', '{"id":2}']);
    assert.deepEqual(
      split(
        '{"meta":{"n":1},"data":{"x":[1],"items":[{"a":{"b":[1,{"c":"}"}]}}]},"next":"/p?2"}',
        'data.items',
      ),
      ['{"a":{"b":[1,{"c":"}"}]}}'],
    );
    assert.deepEqual(split(' [ {"a":1} , {"b":"x"}\t] ', ''), ['{"a":1}', '{"b":"x"}']);
    assert.deepEqual(split('{"total":0,"users":[]}', 'users'), []);
    // The envelope may be pretty-printed; only the records must be one line each.
    assert.deepEqual(split('{\n  "users": [{"id":1}],\n  "total": 1\n}', 'users'), ['{"id":1}']);
  });

  it("keeps the source's text: strings with brackets, quotes and escapes, big integers, unicode", () => {
    const lines = split(
      '{"users":[{"s":"a\\"],{[\\\\","id":12345678901234567890,"n":1.50,"u":"\\u00e9é\\ud83d\\ude00"},{"t":"\\\\"}]}',
      'users',
    );
    assert.deepEqual(lines, [
      '{"s":"a\\"],{[\\\\","id":12345678901234567890,"n":1.50,"u":"\\u00e9é\\ud83d\\ude00"}',
      '{"t":"\\\\"}',
    ]);
  });

  it('finds keys written with escapes, and takes the last of a repeated key as JSON.parse does', () => {
    assert.deepEqual(split('{"\\u0075sers":[{"id":1}]}', 'users'), ['{"id":1}']);
    assert.deepEqual(split('{"users":[{"id":1}],"other":"users","users":[{"id":2},{"id":3}]}', 'users'), [
      '{"id":2}',
      '{"id":3}',
    ]);
    assert.deepEqual(split('{"data":{"items":[{"id":1}]},"data":{"items":[{"id":2}]}}', 'data.items'), [
      '{"id":2}',
    ]);
    assert.equal(split('{"data":{"items":[{"id":1}]},"data":5}', 'data.items'), undefined);
  });

  it('declines records that are not all objects, span lines, are not UTF-8 or not JSON', () => {
    for (const t of [
      '{"users":[{"id":1},2]}',
      '{"users":[{"id":1},"x"]}',
      '{"users":[{"id":1},[1]]}',
      '{"users":[{"id":1},null]}',
      '{"users":[\n  {"id": 1}\n]}',
      '[{"id":1},\r\n{"id":2}]',
      '{"users":{"id":1}}',
      '{"users":[{"id":1}',
      '{"users":[{"id":01}]}',
      '{"users":[{"id":1,}]}',
      '{"users":[{"id":tru}]}',
      '{"users":[{"s":"\\x"}]}',
      '{"users":[{"s":"a\tb"}]}',
      '{"users":[{"id":1}],"total":}',
      '{"users":[{"id":1}]} x',
      '\ufeff{"users":[{"id":1}]}',
    ])
      assert.equal(splitPage(Buffer.from(t), t.startsWith('[') ? '' : 'users'), undefined, t);
    const latin1 = Buffer.concat([Buffer.from('{"users":[{"s":"'), Buffer.from([0xe9]), Buffer.from('"}]}')]);
    assert.equal(splitPage(latin1, 'users'), undefined);
  });

  it('agrees with JSON.parse on 20,000 mutated pages (seeded)', () => {
    let seed = 7;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const bases = [
      '{"users":[{"a":1,"b":[1,2,{"c":"x\\"y\\\\z\\u00e9"}],"d":-0.5e+10,"e":true,"f":false,"g":null},{},{"h":{"i":[]}}],"total":3}',
      '[{"s":"\\n\\t\\/","n":0,"m":-12.25E-3,"arr":[[],[[]],{}]} , {"x" : 1}\t]',
    ];
    const alphabet = '{}[]":,\\ \tu0123456789-+.eEtruefalsnabx\n\u0001é';
    let split = 0;
    for (let k = 0; k < 20_000; k++) {
      const base = k % 2;
      let s = bases[base] as string;
      for (let m = 1 + Math.floor(rnd() * 2); m > 0; m--) {
        const p = Math.floor(rnd() * (s.length + 1));
        const ch = alphabet[Math.floor(rnd() * alphabet.length)] as string;
        const op = rnd();
        s = s.slice(0, p) + (op < 0.66 ? ch : '') + s.slice(op < 0.33 ? p : p + 1);
      }
      const path = base === 0 ? 'users' : '';
      const got = splitPage(Buffer.from(s), path);
      let recs: unknown;
      try {
        recs = getPath(JSON.parse(s), path);
      } catch {
        assert.equal(got, undefined, s);
        continue;
      }
      if (!got) continue; // declining is always safe: the page is then parsed whole
      split++;
      assert.ok(Array.isArray(recs) && recs.every(isObject), s);
      assert.equal(got.count, recs.length, s);
      const lines = got.ndjson.toString('utf8').split('\n').slice(0, -1);
      assert.deepEqual(
        lines.map((l) => JSON.parse(l) as unknown),
        recs,
        s,
      );
    }
    assert.ok(split > 1000, `only ${split} pages split`);
  });
});
