/**
 * recordsNdjson cuts a parsed page's records out of the response bytes: each line is the element's
 * own text (parsing it gives the record JSON.parse gave), and anything it cannot cut unchanged falls
 * back (undefined) so the caller serialises the parsed records instead.
 */
import assert from 'node:assert/strict';
import { getPath } from '../../../shared/pull/paginate';
import { recordsNdjson } from '../../../shared/pull/ndjson';

function cut(text: string, path: string): string[] | undefined {
  const recs = getPath(JSON.parse(text), path) as unknown[];
  const out = recordsNdjson(Buffer.from(text), path, recs.length);
  if (!out) return undefined;
  const s = out.toString('utf8');
  assert.ok(s === '' || s.endsWith('\n'));
  const lines = s === '' ? [] : s.slice(0, -1).split('\n');
  // Every line is one record, equal to what the parse gave.
  assert.deepEqual(
    lines.map((l) => JSON.parse(l) as unknown),
    recs,
  );
  return lines;
}

describe('pull: recordsNdjson', () => {
  it('cuts the array at a top-level key, a nested path or the body itself', () => {
    assert.deepEqual(cut('{"users":[{"id":1},{"id":2}],"total":2}', 'users'), ['{"id":1}', '{"id":2}']);
    assert.deepEqual(
      cut('{"meta":{"n":1},"data":{"x":[1],"items":[{"a":{"b":[1,{"c":"}"}]}}]}}', 'data.items'),
      ['{"a":{"b":[1,{"c":"}"}]}}'],
    );
    assert.deepEqual(cut(' [ {"a":1} , {"b":"x"}\t] ', ''), ['{"a":1}', '{"b":"x"}']);
    assert.deepEqual(cut('{"total":0,"users":[]}', 'users'), []);
  });

  it('keeps the source text: strings with brackets, quotes and escapes, big integers, unicode', () => {
    const lines = cut(
      '{"users":[{"s":"a\\"],{[\\\\","id":12345678901234567890,"n":1.50,"u":"\\u00e9é"},{"t":"\\\\"}]}',
      'users',
    );
    assert.deepEqual(lines, [
      '{"s":"a\\"],{[\\\\","id":12345678901234567890,"n":1.50,"u":"\\u00e9é"}',
      '{"t":"\\\\"}',
    ]);
  });

  it('finds keys written with escapes, and takes the last of a repeated key as JSON.parse does', () => {
    assert.deepEqual(cut('{"\\u0075sers":[{"id":1}]}', 'users'), ['{"id":1}']);
    assert.deepEqual(cut('{"users":[{"id":1}],"other":"users","users":[{"id":2},{"id":3}]}', 'users'), [
      '{"id":2}',
      '{"id":3}',
    ]);
    assert.deepEqual(cut('{"data":{"items":[{"id":1}]},"data":{"items":[{"id":2}]}}', 'data.items'), [
      '{"id":2}',
    ]);
  });

  it('falls back when records are not all objects, span lines, or do not match the parsed count', () => {
    assert.equal(cut('{"users":[{"id":1},2]}', 'users'), undefined);
    assert.equal(cut('{"users":[{"id":1},"x"]}', 'users'), undefined);
    assert.equal(cut('{"users":[{"id":1},[1]]}', 'users'), undefined);
    assert.equal(cut('{"users":[{"id":1},null]}', 'users'), undefined);
    assert.equal(cut('{"users":[\n  {"id": 1}\n]}', 'users'), undefined);
    assert.equal(cut('[{"id":1},\r\n{"id":2}]', ''), undefined);
    assert.equal(recordsNdjson(Buffer.from('{"users":[{"id":1},{"id":2}]}'), 'users', 3), undefined);
    assert.equal(recordsNdjson(Buffer.from('{"users":{"id":1}}'), 'users', 1), undefined);
    assert.equal(recordsNdjson(Buffer.from('{"users":[{"id":1}'), 'users', 1), undefined);
  });
});
