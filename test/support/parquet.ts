/** Reads Parquet back with DuckDB (an independent reader of what we wrote). */
import { DuckDBInstance } from '@duckdb/node-api';

let db: Promise<DuckDBInstance> | undefined;

async function conn() {
  db ??= DuckDBInstance.create(':memory:').then(async (d) => {
    const c = await d.connect();
    await c.run(`SET GLOBAL TimeZone='UTC'`);
    c.closeSync();
    return d;
  });
  return (await db).connect();
}

export async function queryParquet<T = Record<string, unknown>>(
  file: string,
  sql = 'SELECT * FROM p',
): Promise<T[]> {
  const c = await conn();
  try {
    await c.run(
      `CREATE OR REPLACE TEMP VIEW p AS SELECT * FROM read_parquet('${file.replace(/'/g, "''")}', hive_partitioning=false)`,
    );
    return (await c.runAndReadAll(sql)).getRowObjectsJson() as T[];
  } finally {
    c.closeSync();
  }
}

export async function parquetSchema(
  file: string,
): Promise<Record<string, { type: string; logical: string | null; converted: string | null }>> {
  const c = await conn();
  try {
    const rows = (
      await c.runAndReadAll(
        `SELECT name, type, logical_type, converted_type FROM parquet_schema('${file.replace(/'/g, "''")}')`,
      )
    ).getRowObjectsJson() as {
      name: string;
      type: string;
      logical_type: string | null;
      converted_type: string | null;
    }[];
    return Object.fromEntries(
      rows.map((r) => [r.name, { type: r.type, logical: r.logical_type, converted: r.converted_type }]),
    );
  } finally {
    c.closeSync();
  }
}
