/** The streaming records unwrapper: wrapped documents → one record per line, in any chunking. */
import assert from 'node:assert/strict';
import { unwrapRecords, type UnwrapStats } from '../../../shared/ingest/unwrap';

async function lines(input: string | string[], path: string[], maxRecordBytes = 1000): Promise<string[]> {
  const chunks = Array.isArray(input) ? input : [input];
  let out = '';
  const src = (async function* () {
    for (const c of chunks) yield Buffer.from(c);
  })();
  for await (const b of unwrapRecords(src, path, { maxRecordBytes })) out += b.toString();
  assert.ok(out === '' || out.endsWith('\n'), 'every record ends its line');
  return out === '' ? [] : out.slice(0, -1).split('\n');
}

/** Every split of `text` into two chunks, and byte-by-byte chunks, give the same lines. */
async function sameInAnyChunking(text: string, path: string[]): Promise<string[]> {
  const whole = await lines(text, path);
  assert.deepEqual(await lines(text.split(''), path), whole, 'byte by byte');
  for (let i = 1; i < text.length; i += Math.max(1, Math.floor(text.length / 37)))
    assert.deepEqual(await lines([text.slice(0, i), text.slice(i)], path), whole, `split at ${i}`);
  return whole;
}

describe('unwrapRecords', () => {
  it('streams the records of a wrapper and drops its envelope', async () => {
    const doc =
      '{"total":2,"users":[\n {\n  "id": 1,\n  "s": "x\\"y]}"\n },\n {"id":2,"a":{"b":[1,{"c":2}]}}\n], "skip": 0}';
    assert.deepEqual(await sameInAnyChunking(doc, ['users']), [
      '{  "id": 1,  "s": "x\\"y]}" }',
      '{"id":2,"a":{"b":[1,{"c":2}]}}',
    ]);
  });

  it('passes records through: NDJSON, a bare array, scalars (rejected downstream)', async () => {
    assert.deepEqual(await sameInAnyChunking('{"id":1}\n{"id":2}\n', ['users']), ['{"id":1}', '{"id":2}']);
    assert.deepEqual(await sameInAnyChunking(' [{"id":1}, {"id":2}] ', ['users']), ['{"id":1}', '{"id":2}']);
    assert.deepEqual(await sameInAnyChunking('42 "x" null {"a":1}', ['users']), [
      '42',
      '"x"',
      'null',
      '{"a":1}',
    ]);
    // An object whose key only resembles the path, or whose value is not an array, is a record.
    assert.deepEqual(await lines('{"users":5}{"user":[1]}', ['users']), ['{"users":5}', '{"user":[1]}']);
  });

  it('follows a nested records path and ignores the same key deeper down', async () => {
    const doc = '{"data":{"meta":{"items":[9]},"items":[{"id":1},{"id":2}]},"next":{"items":[3]}}';
    assert.deepEqual(await sameInAnyChunking(doc, ['data', 'items']), ['{"id":1}', '{"id":2}']);
    assert.deepEqual(await lines('{"data":{"x":1},"items":[{"id":1}]}', ['data', 'items']), [
      '{"data":{"x":1},"items":[{"id":1}]}',
    ]);
  });

  it('unwraps pages concatenated or in an array, and counts', async () => {
    const stats: UnwrapStats = { records: 0, wrappers: 0 };
    let out = '';
    const src = (async function* () {
      yield Buffer.from('[{"users":[{"id":1}]},{"users":[{"id":2},{"id":3}]}]\n{"users":[]}');
    })();
    for await (const b of unwrapRecords(src, ['users'], { maxRecordBytes: 100, stats })) out += b.toString();
    assert.equal(out, '{"id":1}\n{"id":2}\n{"id":3}\n');
    assert.deepEqual(stats, { records: 3, wrappers: 3 });
  });

  it('keeps a bad record on one line and bounds a long one', async () => {
    assert.deepEqual(await lines('{"users":[{"s":"line\nbreak"}]}', ['users']), ['{"s":"line\\nbreak"}']);
    const long = await lines(`{"users":[{"s":"${'x'.repeat(100)}"},{"id":3}]}`, ['users'], 40);
    assert.equal(long[0]?.length, 41);
    assert.equal(long[1], '{"id":3}');
    // A truncated document: the cut record is emitted as it is (invalid JSON, rejected downstream).
    assert.deepEqual(await lines('{"users":[{"id":1},{"id":2', ['users']), ['{"id":1}', '{"id":2']);
    assert.deepEqual(await lines('\ufeff{"users":[{"id":1}]}', ['users']), ['{"id":1}']);
  });
});
