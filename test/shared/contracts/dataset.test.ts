/** Dataset contracts: the JSON-shape fields are validated with clear errors; nested types reach BigQuery. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadDatasetContract, validateDatasetContract } from '../../../shared/contracts/dataset';
import { bigqueryField } from '../../../shared/contracts/types';
import { jsonPaths, keySpellings } from '../../../shared/ingest/sql';

const CONTRACTS = path.join(__dirname, '../../../contracts');
const base = {
  dataset: 'd',
  columns: [
    { name: 'id', type: 'int64', required: true },
    { name: 'at', type: 'timestamp' },
  ],
  primaryKey: ['id'],
};
const problems = (c: unknown): string => {
  try {
    validateDatasetContract(c, 'd.json');
    return '';
  } catch (err) {
    return (err as Error).message;
  }
};

describe('dataset contracts: JSON shapes', () => {
  it('accept a records path, dotted aliases, struct field aliases and a time fallback', () => {
    const c = {
      ...base,
      records: 'data.items',
      columns: [
        { name: 'id', type: 'int64', required: true, aliases: ['userId'] },
        { name: 'at', type: 'timestamp', required: true, fallback: 'window_end' },
        { name: 'city', type: 'string', aliases: ['address.city'] },
        {
          name: 'lines',
          type: { array: { struct: [{ name: 'product_id', type: 'int64', aliases: ['id'] }] } },
        },
      ],
    };
    assert.equal(problems(c), '');
  });

  it('reject bad ones, naming the file and the field', () => {
    const bad = (patch: Record<string, unknown>, cols?: unknown[]): string =>
      problems({ ...base, ...patch, ...(cols ? { columns: cols } : {}) });
    assert.match(bad({ records: 'a..b' }), /d\.json[\s\S]*records: a key or a dotted path/);
    assert.match(bad({ records: 7 }), /records:/);
    assert.match(
      bad({}, [{ name: 'id', type: 'int64', fallback: 'window_end' }]),
      /columns\[0\]\.fallback: only date and timestamp columns take a fallback/,
    );
    assert.match(
      bad({}, [
        { name: 'id', type: 'int64' },
        { name: 'at', type: 'timestamp', fallback: 'now' },
      ]),
      /columns\[1\]\.fallback: one of window_end, ingested_at/,
    );
    assert.match(
      bad({}, [
        { name: 'id', type: 'int64' },
        { name: 'at', type: 'timestamp', fallback: 'ingested_at', default: '2024-01-01' },
      ]),
      /default or a fallback, not both/,
    );
    assert.match(bad({}, [{ name: 'id', type: 'int64', aliases: ['a..b'] }]), /columns\[0\]\.aliases\[0\]/);
    assert.match(
      bad({}, [
        { name: 'id', type: 'int64' },
        { name: 's', type: { struct: [{ name: 'x', type: 'string', aliases: [''] }] } },
      ]),
      /columns\[1\]\.type\.x\.aliases\[0\]/,
    );
  });

  it('spell keys the ways APIs do, and follow dotted paths', () => {
    assert.deepEqual(keySpellings('first_name'), [
      'first_name',
      'firstName',
      'FirstName',
      'first-name',
      'FIRST_NAME',
      'firstname',
    ]);
    assert.deepEqual(keySpellings('userId'), ['userId', 'user_id', 'UserId', 'user-id', 'USER_ID', 'userid']);
    assert.deepEqual(keySpellings('id'), ['id', 'Id', 'ID']);
    assert.ok(jsonPaths(['address.city']).includes('$."address"."city"'));
    assert.ok(jsonPaths(['address.city']).includes('$."Address"."City"'));
  });

  it('the bundled store contracts give BigQuery REPEATED RECORDs for their lists of structs', () => {
    const carts = loadDatasetContract(CONTRACTS, 'store_carts');
    const products = carts.columns.find((c) => c.name === 'products');
    assert.ok(products);
    const f = bigqueryField(products);
    assert.equal(f.mode, 'REPEATED');
    assert.equal(f.type, 'RECORD');
    assert.deepEqual(
      f.fields?.map((x) => [x.name, x.type]),
      [
        ['product_id', 'INT64'],
        ['title', 'STRING'],
        ['price', 'FLOAT64'],
        ['quantity', 'INT64'],
        ['total', 'FLOAT64'],
        ['discounted_total', 'FLOAT64'],
      ],
    );
    // A secret the store API sends is either not mapped at all or declared `drop` (the IP: `hash`).
    for (const d of ['store_users', 'store_products', 'store_carts'])
      for (const col of loadDatasetContract(CONTRACTS, d).columns) {
        const text = JSON.stringify([col.name, col.aliases ?? []]).toLowerCase();
        for (const secret of ['password', 'ssn', 'cardnumber', 'card_number', 'iban', '"ip"', '"ein"'])
          if (text.includes(secret))
            assert.equal(
              col.sensitive?.policy,
              secret === '"ip"' ? 'hash' : 'drop',
              `${d}.${col.name} (${secret})`,
            );
      }
  });
});
