import assert from 'node:assert/strict';
import { validateDatasetContract } from '../../../shared/contracts/dataset';
import { hmacHex, hmacSetupSql, hmacSql } from '../../../shared/governance/hmac';
import { storedColumns } from '../../../shared/governance/sensitivity';
import { DuckDBInstance } from '@duckdb/node-api';

const contract = (cols: unknown[], primaryKey = ['id']): unknown => ({
  dataset: 'people',
  columns: [{ name: 'id', type: 'string' }, ...cols],
  primaryKey,
});

describe('governance: sensitivity in contracts', function () {
  it('refuses a dropped primary key, unknown classes and policies, naming file and column', function () {
    assert.throws(
      () =>
        validateDatasetContract(
          {
            dataset: 'people',
            columns: [{ name: 'id', type: 'string', sensitive: { class: 'secret', policy: 'drop' } }],
            primaryKey: ['id'],
          },
          'people.json',
        ),
      /people\.json[\s\S]*columns\[0\]\.sensitive\.policy: id is part of the primary key and cannot be dropped/,
    );
    assert.throws(
      () =>
        validateDatasetContract(
          contract([{ name: 'e', type: 'string', sensitive: { class: 'mail', policy: 'mask' } }]),
          'p.json',
        ),
      /columns\[1\]\.sensitive\.class: one of email/,
    );
    assert.throws(
      () =>
        validateDatasetContract(
          contract([{ name: 'e', type: 'string', sensitive: { class: 'email', policy: 'hide' } }]),
          'p.json',
        ),
      /columns\[1\]\.sensitive\.policy: one of drop, hash, mask/,
    );
    assert.throws(
      () =>
        validateDatasetContract(
          contract([{ name: 'b', type: 'string', sensitive: { class: 'date_of_birth', policy: 'mask' } }]),
          'p.json',
        ),
      /date_of_birth masks to the year/,
    );
    const ok = validateDatasetContract(
      contract([
        { name: 'e', type: 'string', sensitive: { class: 'email', policy: 'hash' } },
        { name: 'p', type: 'string', sensitive: { class: 'secret', policy: 'drop' } },
        { name: 'n', type: 'int64', sensitive: { class: 'phone', policy: 'mask' } },
      ]),
      'p.json',
    );
    assert.deepEqual(
      storedColumns(ok.columns).map((c) => `${c.name}:${String(c.type)}`),
      ['id:string', 'e:string', 'n:int64'],
    );
  });

  it('hashes inside DuckDB exactly as HMAC-SHA256 does, with the key only in session variables', async function () {
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    for (const key of ['short-key-1234567', 'k'.repeat(100)]) {
      await c.run(hmacSetupSql(key));
      const r = (
        await c.runAndReadAll(`SELECT ${hmacSql("'ana@example.com'")} AS h, ${hmacSql('NULL::VARCHAR')} AS n`)
      ).getRowObjectsJson()[0] as { h: string; n: null };
      assert.equal(r.h, hmacHex(key, 'ana@example.com'));
      assert.equal(r.n, null);
      assert.ok(!hmacSql('x').includes(key));
    }
    c.closeSync();
  });
});
