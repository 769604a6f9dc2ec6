/**
 * The BigQuery dialect: one dataset per layer (`<prefix>_<layer>`), partitioned and clustered tables,
 * backslash-escaped string literals.
 */
import type { ScalarType } from '../../../contracts/types';
import { LAYERS, type TableRef } from '../../tables';
import { Dialect, isoTimestamp } from '../core';
import type { CreateTableAsOptions, TableLayout } from '../types';
import { bigqueryMacros } from './macros';

const TYPES: Record<ScalarType, string> = {
  string: 'STRING',
  int64: 'INT64',
  float64: 'FLOAT64',
  numeric: 'NUMERIC',
  bool: 'BOOL',
  date: 'DATE',
  timestamp: 'TIMESTAMP',
  json: 'JSON',
};

export class BigQueryDialect extends Dialect {
  readonly name = 'bigquery' as const;
  readonly macros = bigqueryMacros((t) => this.scalarType(t));

  constructor(
    readonly project: string,
    readonly prefix: string,
    readonly location = 'EU',
  ) {
    super();
  }

  // ---- names, types and literals
  dataset(layer: TableRef['layer']): string {
    return `${this.prefix}_${layer}`;
  }

  table(ref: TableRef): string {
    return `\`${this.project}.${this.dataset(ref.layer)}.${ref.name}\``;
  }

  ident(name: string): string {
    return `\`${name.replace(/`/g, '\\`')}\``;
  }

  scalarType(t: ScalarType): string {
    return TYPES[t];
  }

  timestampLiteral(d: string): string {
    return `TIMESTAMP '${isoTimestamp(d)}'`;
  }

  /** BigQuery escapes with backslashes and allows no raw newline in a quoted string. */
  override stringLiteral(s: string): string {
    const esc = s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n').replace(/\r/g, '\\r');
    return `'${esc}'`;
  }

  // ---- statements
  /**
   * The datasets belong to Terraform (deploy/bigquery.tf): creating one needs a project-level
   * permission the least-privilege loader does not have, even with IF NOT EXISTS. See schemaDdl().
   */
  createSchemas(): string[] {
    return [];
  }

  /** The DDL Terraform's datasets correspond to (documentation, and for projects managed by hand). */
  schemaDdl(): string[] {
    return LAYERS.map(
      (l) =>
        `CREATE SCHEMA IF NOT EXISTS \`${this.project}.${this.dataset(l)}\` OPTIONS (location = ${this.stringLiteral(this.location)})`,
    );
  }

  // Stages expire on their own if a crashed run leaves one behind.
  override createStage(stage: TableRef, select: string): string {
    return `CREATE TABLE ${this.table(stage)} OPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)) AS ${select}`;
  }

  leftoverStages(): undefined {
    return undefined; // createStage sets an expiration
  }

  transaction(statements: string[]): string {
    return ['BEGIN TRANSACTION', ...statements, 'COMMIT TRANSACTION'].join(';\n') + ';';
  }

  protected tableOptions(opts: TableLayout): string {
    let s = '';
    if (opts.partitionBy) s += ` PARTITION BY ${this.ident(opts.partitionBy)}`;
    if (opts.clusterBy?.length) s += ` CLUSTER BY ${opts.clusterBy.map((c) => this.ident(c)).join(', ')}`;
    return s;
  }

  createTableAs(target: TableRef, select: string, opts: CreateTableAsOptions): string {
    const head = opts.replace ? 'CREATE OR REPLACE TABLE' : 'CREATE TABLE IF NOT EXISTS';
    const body = opts.empty ? `SELECT * FROM (${select}) WHERE FALSE` : select;
    return `${head} ${this.table(target)}${this.tableOptions(opts)} AS ${body}`;
  }

  dropTable(ref: TableRef): string {
    return `DROP TABLE IF EXISTS ${this.table(ref)}`;
  }
}
