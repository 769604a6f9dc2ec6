/**
 * The generated Terraform: up to date with the manifest and contracts (CI fails when stale), and every
 * BigQuery table partitioned, clustered and typed as its contract says.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { listDatasets, loadDatasetContract } from '../../shared/contracts/dataset';
import { bigqueryField } from '../../shared/contracts/types';
import { packageRoot } from '../../shared/paths';
import { checkGenerated, GENERATED_DIR, renderAll, writeGenerated } from '../../deploy/scripts/generate';
import { renderFunctions } from '../../deploy/scripts/render-functions';
import { FUNCTIONS, type FunctionSpec } from '../../shared/manifest';
import { loadModel, one, resourcesOfType, type Body, type TfModel } from './terraform-model';

const CONTRACTS = path.join(packageRoot, 'contracts');
const LINEAGE = ['_source_uri', '_source_generation', '_ingested_at'];

interface Field {
  name: string;
  type: string;
  mode: string;
  fields?: Field[];
}

describe('deploy: generated Terraform', function () {
  let m: TfModel;
  before(async function () {
    m = await loadModel(path.join(packageRoot, 'deploy'));
  });

  it('the checked-in deploy/generated files are up to date (run `npx tsx deploy/scripts/generate.ts`)', function () {
    assert.deepEqual(checkGenerated(GENERATED_DIR, renderAll()), { stale: [], extra: [] });
  });

  it('check mode notices a changed contract, a missing file and a leftover file', function () {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-gen-'));
    try {
      const contracts = path.join(tmp, 'contracts');
      fs.cpSync(CONTRACTS, contracts, { recursive: true });
      const out = path.join(tmp, 'generated');
      writeGenerated(out, renderAll({ contractsDir: contracts }));
      assert.deepEqual(checkGenerated(out, renderAll({ contractsDir: contracts })), { stale: [], extra: [] });

      // A new event contract must become a table without touching the generator.
      fs.mkdirSync(path.join(contracts, 'events'), { recursive: true });
      fs.writeFileSync(
        path.join(contracts, 'events', 'shipment.json'),
        JSON.stringify({
          event_type: 'shipment',
          table: 'shipments',
          partition: 'event_time',
          cluster: ['carrier'],
          fields: [{ name: 'carrier', type: 'string', required: true }],
        }),
      );
      fs.writeFileSync(path.join(out, 'old.tf.json'), '{}\n');
      const files = renderAll({ contractsDir: contracts });
      assert.deepEqual(checkGenerated(out, files), {
        stale: ['bigquery_tables.tf.json'],
        extra: ['old.tf.json'],
      });
      const tables = JSON.parse(files['bigquery_tables.tf.json'] as string).resource.google_bigquery_table;
      assert.equal(tables.events_shipments.table_id, 'shipments');
      assert.deepEqual(tables.events_shipments.clustering, ['carrier']);

      writeGenerated(out, files);
      fs.rmSync(path.join(out, 'functions.tf.json'));
      assert.deepEqual(checkGenerated(out, files), { stale: ['functions.tf.json'], extra: [] });
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('the generator refuses manifest entries Terraform could not wire safely', function () {
    const base = FUNCTIONS.find((f) => f.entryPoint === 'routeEvent') as FunctionSpec;
    const pubsub = base.triggers[0] as Extract<FunctionSpec['triggers'][number], { kind: 'pubsub' }>;
    const bad = (triggers: FunctionSpec['triggers']): FunctionSpec[] => [{ ...base, triggers }];
    assert.throws(
      () => renderFunctions(bad([{ ...pubsub, topic: 'deadLetter' }])),
      /dead-letter into itself/,
    );
    assert.throws(
      () => renderFunctions(bad([{ ...pubsub, maxDeliveryAttempts: 3 }])),
      /max_delivery_attempts/,
    );
    const finalized = {
      kind: 'storage.finalized',
      bucket: 'raw',
      eventType: 'google.cloud.storage.object.v1.finalized',
    } as const;
    assert.throws(
      () => renderFunctions(bad([finalized, { ...finalized, bucket: 'bronze' }])),
      /one Eventarc trigger/,
    );
  });

  const tableFor = (dataset: string, table: string): Body | undefined =>
    resourcesOfType(m, 'google_bigquery_table').find(
      (t) =>
        t.body.dataset_id === `\${google_bigquery_dataset.${dataset}.dataset_id}` &&
        t.body.table_id === table,
    )?.body;
  const schemaOf = (t: Body): Field[] => JSON.parse(String(t.schema)) as Field[];

  it('every dataset contract has Bronze (as the loader loads it) and Silver (as the contract says) tables', function () {
    const datasets = listDatasets(CONTRACTS);
    assert.ok(datasets.length > 0);
    for (const name of datasets) {
      const c = loadDatasetContract(CONTRACTS, name);
      for (const layer of ['bronze', 'silver']) {
        const t = tableFor(layer, name);
        assert.ok(t, `${layer}.${name}`);
        // Bronze matches what loadWarehouse's load jobs declare; Silver follows the contract.
        const bronze = layer === 'bronze';
        assert.deepEqual(
          one(t.time_partitioning),
          { type: 'DAY', field: bronze ? '_ingested_at' : (c.partitionColumn ?? '_ingested_at') },
          `${layer}.${name} partitioning`,
        );
        assert.deepEqual(
          t.clustering ?? [],
          bronze ? ['_source_generation'] : (c.clusterColumns ?? []),
          `${layer}.${name} clustering`,
        );
        const schema = schemaOf(t);
        const stored = c.columns.filter((col) => col.sensitive?.policy !== 'drop');
        assert.deepEqual(
          schema.map((f) => f.name),
          [...stored.map((col) => col.name), ...LINEAGE],
          `${layer}.${name}: the contract's stored columns (no drop), then Bronze lineage`,
        );
        for (const col of stored) {
          // A hashed column holds the hex HMAC of its value.
          const expected = bigqueryField(col.sensitive?.policy === 'hash' ? { ...col, type: 'string' } : col);
          const actual = schema.find((f) => f.name === col.name) as Field;
          assert.equal(actual.type, expected.type, `${layer}.${name}.${col.name} type`);
          assert.equal(
            actual.mode,
            expected.mode === 'REPEATED' ? 'REPEATED' : 'NULLABLE',
            `${layer}.${name}.${col.name} mode`,
          );
        }
        // The loader adds columns at run time (ALLOW_FIELD_ADDITION); Terraform must not undo them.
        assert.deepEqual(one(t.lifecycle).ignore_changes, ['schema']);
        assert.equal(t.deletion_protection, '${var.deletion_protection}');
      }
    }
  });

  it('every event contract has a table in the events dataset, partitioned and clustered as declared, plus dead_letter', function () {
    const dir = path.join(CONTRACTS, 'events');
    const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
    const tables = resourcesOfType(m, 'google_bigquery_table').filter(
      (t) => t.body.dataset_id === '${google_bigquery_dataset.events.dataset_id}',
    );
    assert.equal(tables.length, files.length + 1, 'one table per event contract, plus dead_letter');
    for (const file of files) {
      // Read the contract file directly, not through the generator's reader.
      const c = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as {
        event_type: string;
        table?: string;
        partition?: string;
        cluster?: string[];
        fields: { name: string }[];
      };
      const t = tableFor('events', c.table ?? c.event_type);
      assert.ok(t, `events.${c.table ?? c.event_type}`);
      assert.deepEqual(one(t.time_partitioning), { type: 'DAY', field: c.partition ?? 'event_time' });
      assert.deepEqual(t.clustering ?? [], c.cluster ?? []);
      const names = schemaOf(t).map((f) => f.name);
      for (const f of c.fields) assert.ok(names.includes(f.name), `${file}: column ${f.name}`);
      for (const env of ['event_id', 'event_type', 'event_time'])
        assert.ok(names.includes(env), `${file}: envelope ${env}`);
      assert.equal(t.lifecycle, undefined, 'Terraform owns event table columns');
    }
    const dl = tableFor('events', 'dead_letter');
    assert.ok(dl, 'dead_letter table');
    assert.ok(one(dl.time_partitioning).field);
  });

  it('declares the Gold dataset but no Gold tables (the loader creates them from the models)', function () {
    assert.ok(m.resources.has('google_bigquery_dataset.gold'));
    assert.equal(
      resourcesOfType(m, 'google_bigquery_table').filter(
        (t) => t.body.dataset_id === '${google_bigquery_dataset.gold.dataset_id}',
      ).length,
      0,
    );
  });
});
