/**
 * `smelter drop --infer`: sniff a local file with DuckDB and write a starting contract for the user to
 * edit (types, required columns, primary key and partition column are guesses).
 */
import fs from 'node:fs';
import type { ColumnSpec, DatasetContract } from '../contracts/dataset';
import { normaliseHeader } from '../contracts/dataset';
import type { ColumnType } from '../contracts/types';
import { permanent } from '../errors';
import { detectFormat, isGzip } from './format';
import type { ConversionEngine } from './ports';
import { lit } from './sql';

export function contractType(duck: string): ColumnType {
  const t = duck.toUpperCase();
  if (/^(BIGINT|INTEGER|SMALLINT|TINYINT|UBIGINT|UINTEGER|USMALLINT|UTINYINT|HUGEINT)$/.test(t))
    return 'int64';
  if (/^(DOUBLE|FLOAT|REAL)$/.test(t)) return 'float64';
  if (t.startsWith('DECIMAL')) return 'numeric';
  if (t === 'BOOLEAN') return 'bool';
  if (t === 'DATE') return 'date';
  if (t.startsWith('TIMESTAMP')) return 'timestamp';
  if (t === 'JSON' || t.startsWith('STRUCT') || t.endsWith('[]') || t.startsWith('MAP')) return 'json';
  return 'string';
}

export async function inferContract(
  file: string,
  dataset: string,
  engine: ConversionEngine,
): Promise<DatasetContract> {
  const fd = fs.openSync(file, 'r');
  const head = Buffer.alloc(64 * 1024);
  const n = fs.readSync(fd, head, 0, head.length, 0);
  fs.closeSync(fd);
  let format = detectFormat({ name: file }, head.subarray(0, n));
  if (isGzip(head))
    format = /\.csv|\.tsv/i.test(file) ? 'csv' : /\.json\.gz$/i.test(file) ? 'json-array' : 'ndjson';
  if (format === 'empty') throw permanent('BAD_DATA', `${file} is empty: nothing to infer`);
  const reader =
    format === 'csv'
      ? `read_csv(${lit(file)}, sample_size=20480)`
      : format === 'ndjson'
        ? `read_json(${lit(file)}, format='newline_delimited', sample_size=20480)`
        : `read_json(${lit(file)}, format='array', sample_size=20480)`;
  const c = await engine.connect();
  try {
    const cols = await c.rows<{ column_name: string; column_type: string }>(
      `DESCRIBE SELECT * FROM ${reader}`,
    );
    const nulls =
      (
        await c.rows<Record<string, string>>(
          `SELECT ${cols.map((x, i) => `count(*) FILTER (WHERE "${x.column_name.replace(/"/g, '""')}" IS NULL) AS n${i}`).join(', ')}, count(*) AS total FROM (SELECT * FROM ${reader} LIMIT 20480)`,
        )
      )[0] ?? {};
    const used = new Set<string>();
    const columns: ColumnSpec[] = cols.map((x, i) => {
      let name = normaliseHeader(x.column_name) || `column_${i + 1}`;
      if (/^[0-9]/.test(name)) name = `c_${name}`;
      while (used.has(name)) name += '_';
      used.add(name);
      const col: ColumnSpec = { name, type: contractType(x.column_type) };
      if (name !== x.column_name) col.aliases = [x.column_name];
      if (Number(nulls[`n${i}`] ?? 0) === 0 && Number(nulls.total ?? 0) > 0) col.required = true;
      return col;
    });
    const dateCol = columns.find((x) => x.type === 'date' || x.type === 'timestamp');
    const ids = columns.filter((x) => /(^id$|_id$)/.test(x.name)).map((x) => x.name);
    const primaryKey = ids.length ? ids.slice(0, 2) : [columns[0]?.name ?? 'id'];
    if (dateCol && ids.length && !primaryKey.includes(dateCol.name) && ids.length < 2)
      primaryKey.push(dateCol.name);
    return {
      dataset,
      description: `Inferred from ${file.split('/').pop()} on ${new Date().toISOString().slice(0, 10)} — review before production use.`,
      columns,
      primaryKey,
      ...(dateCol ? { partitionColumn: dateCol.name } : {}),
      clusterColumns: primaryKey.filter((k) => k !== dateCol?.name).slice(0, 2),
      unknownColumns: 'ignore',
    };
  } finally {
    c.close();
  }
}
