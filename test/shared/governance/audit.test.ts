/**
 * The built-in personal-data audit: a Gold model may not hold a value of a masked Silver column in
 * clear; the run stops with AUDIT_FAILED before anything is applied.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isSmelterError, type SmelterError } from '../../../shared/errors';
import { REPO, testWarehouse, type TestWarehouse } from '../../support/warehouse';

describe('governance: Gold never holds a masked value in clear (built-in audit)', () => {
  let t: TestWarehouse;
  let models: string;
  const users = [1, 2, 3].map((i) => ({
    user_id: i,
    first_name: `First${i}`,
    last_name: `Last${i}`,
    email: `user${i}@example.com`,
    email_key: `k${i}`,
    age: 30 + i,
    gender: 'female',
  }));

  beforeEach(async () => {
    models = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-models-'));
    fs.cpSync(path.join(REPO, 'models', 'store'), path.join(models, 'store'), { recursive: true });
  });
  afterEach(async () => {
    await t.close();
    fs.rmSync(models, { recursive: true, force: true });
  });

  it('passes for the bundled Gold (hashes only) and stops a model that copies a masked column', async () => {
    t = await testWarehouse({ modelsDir: models });
    assert.equal((await t.wh.loadObject(await t.bronze('store_users', users))).status, 'loaded');
    assert.equal((await t.rows('SELECT count(*) AS n FROM gold.store_customers'))[0]?.n, '3');
    await t.close();

    fs.writeFileSync(
      path.join(models, 'store', 'gold', 'store_contacts.sql'),
      '-- model: gold.store_contacts\n-- kind: full\n-- unique_key: user_id\nSELECT user_id, lower(email) AS contact FROM @ref(silver.store_users)\n',
    );
    t = await testWarehouse({ modelsDir: models });
    let err: SmelterError | undefined;
    try {
      await t.wh.loadObject(
        await t.bronze(
          'store_users',
          users.map((u) => ({ ...u, age: u.age + 1 })),
        ),
      );
    } catch (e) {
      err = e as SmelterError;
    }
    assert.ok(isSmelterError(err, 'AUDIT_FAILED'), String(err));
    assert.match(
      err.message,
      /no_personal_data\(silver\.store_users\) failed for model gold\.store_contacts: 3 offending/,
    );
  });
});
