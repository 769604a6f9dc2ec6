/** The event warehouse contract against each driver: DuckDB (local) and BigQuery (stubbed HTTP boundary). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BigQuery } from '@google-cloud/bigquery';
import { BigQueryEventWarehouse } from '../../../../shared/adapters/events/bigquery-warehouse';
import { DuckDbEventWarehouse } from '../../../../shared/adapters/events/duckdb-warehouse';
import { getLocalWarehouse, type LocalWarehouse } from '../../../../shared/adapters/warehouse/duckdb-local';
import { bigqueryDeadLetterSpec, bigqueryTableSpec } from '../../../../shared/events/schema';
import { FakeInsertAll } from '../../../support/bigquery-insert-all';
import { contracts, runEventWarehouseContract } from './warehouse-contract';

runEventWarehouseContract({
  name: 'DuckDB',
  async open() {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-ewh-'));
    let down = false;
    const open = (): Promise<LocalWarehouse> => {
      if (!down) return getLocalWarehouse(home);
      down = false;
      return Promise.reject(new Error('IO Error: Could not set lock on file: database is locked'));
    };
    const db = await getLocalWarehouse(home);
    const wh = new DuckDbEventWarehouse(open);
    await wh.prepare(contracts.all());
    return {
      wh,
      eventIds: async (table) =>
        (
          await db.query<{ event_id: string }>(`SELECT event_id FROM events."${table}" ORDER BY event_id`)
        ).map((r) => r.event_id),
      deadLetterKeys: async () =>
        (
          await db.query<{ k: string }>(
            `SELECT message_id || '@' || epoch_ms(publish_time) AS k FROM events.dead_letter ORDER BY k`,
          )
        ).map((r) => r.k),
      outage: () => void (down = true),
      async close() {
        await wh.close();
        await db.close();
        fs.rmSync(home, { recursive: true, force: true });
      },
    };
  },
});

runEventWarehouseContract({
  name: 'BigQuery (insertAll at the HTTP boundary)',
  async open() {
    const savedDetection = process.env.METADATA_SERVER_DETECTION;
    process.env.METADATA_SERVER_DETECTION = 'none';
    const dataset = 'smelter_events';
    const fake = new FakeInsertAll(dataset, [
      ...contracts.all().map(bigqueryTableSpec),
      bigqueryDeadLetterSpec(),
    ]).install();
    const wh = new BigQueryEventWarehouse({
      datasetId: dataset,
      client: new BigQuery({ projectId: 'smelter-test' }),
    });
    return {
      wh,
      eventIds: async (table) =>
        fake
          .rows(table)
          .map((r) => String(r.event_id))
          .sort(),
      deadLetterKeys: async () =>
        fake
          .rows('dead_letter')
          .map((r) => `${String(r.message_id)}@${Date.parse(String(r.publish_time))}`)
          .sort(),
      outage: () => fake.failNext(Object.assign(new Error('Backend error'), { code: 503 })),
      async close() {
        await wh.close();
        fake.uninstall();
        if (savedDetection === undefined) delete process.env.METADATA_SERVER_DETECTION;
        else process.env.METADATA_SERVER_DETECTION = savedDetection;
      },
    };
  },
});
