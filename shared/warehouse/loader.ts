/**
 * Pure helpers of the Bronze loader: which objects to load, the deterministic load job id, and the
 * predicate selecting one loaded file's rows in the Bronze table.
 */
import { createHash } from 'node:crypto';
import type { DatasetContract } from '../contracts/dataset';
import type { Dialect } from './dialect/core';

export interface BronzeObject {
  bucket: string;
  name: string;
  generation: string;
}

export type Skip = { skip: true; reason: string };

/** Bronze Parquet objects are loaded; manifests, rejects and anything else are ignored. */
export function classifyBronzeObject(name: string): { dataset: string } | Skip {
  if (name.endsWith('.manifest.json')) return { skip: true, reason: 'manifest (commit marker), not data' };
  if (!name.endsWith('.parquet')) return { skip: true, reason: 'not a .parquet object' };
  const parts = name.split('/');
  const dataset = parts[0] ?? '';
  if (parts.length < 2 || !dataset || dataset.startsWith('_'))
    return { skip: true, reason: 'not inside a dataset folder' };
  return { dataset };
}

/**
 * BigQuery job ids are unique per project: the same object generation always maps to the same id, so
 * a duplicate delivery's load fails with "already exists" instead of appending twice.
 */
export function loadJobId(o: BronzeObject): string {
  return `smelter_load_${createHash('sha256').update(`${o.bucket}/${o.name}#${o.generation}`).digest('hex').slice(0, 40)}`;
}

/** The raw source generation embedded in the Bronze name (`…-g<generation>.parquet`). */
export function sourceGenerationOf(name: string): string | undefined {
  return /-g(\d{1,20})\.parquet$/.exec(name)?.[1];
}

/**
 * Rows of one Bronze file: its source generation, and (so engines can skip older data) ingested no
 * earlier than that generation's time — the raw object existed before it was converted.
 */
export function batchPredicate(d: Dialect, name: string): string {
  const gen = sourceGenerationOf(name);
  if (!gen) return 'TRUE';
  const micros = BigInt(gen);
  const parts = [`${d.ident('_source_generation')} = ${gen}`];
  if (micros > 10n ** 12n && micros < 10n ** 17n) {
    const since = new Date(Number(micros / 1000n) - 60_000).toISOString();
    parts.push(`${d.ident('_ingested_at')} >= ${d.timestampLiteral(since)}`);
  }
  return parts.join(' AND ');
}

/** Backfill scope on a Bronze table: the contract's partition column within [from, to]. */
export function backfillPredicate(
  d: Dialect,
  contract: DatasetContract,
  from: string,
  toExclusive: string,
): string {
  const col = contract.partitionColumn;
  if (!col) return 'TRUE';
  const type = contract.columns.find((c) => c.name === col)?.type;
  if (type === 'timestamp')
    return `${d.ident(col)} >= ${d.timestampLiteral(from)} AND ${d.ident(col)} < ${d.timestampLiteral(toExclusive)}`;
  return `${d.ident(col)} >= ${d.dateLiteral(from)} AND ${d.ident(col)} < ${d.dateLiteral(toExclusive)}`;
}
