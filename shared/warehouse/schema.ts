/**
 * Schema evolution. A new nullable column is added downstream; a type change or a missing required
 * column is incompatible: the dataset stops with SCHEMA_INCOMPATIBLE and nothing is lost (the Bronze
 * object stays in its bucket and in the ledger, loadable once the conflict is resolved).
 */
import { storedColumns } from '../governance/sensitivity';
import type { ColumnType, FieldSpec } from '../contracts/types';
import type { DatasetContract } from '../contracts/dataset';
import type { ColumnInfo, TypeFamily } from './engine';

export interface SchemaDiff {
  /** Columns in the incoming data the table lacks (added as NULLABLE). */
  added: ColumnInfo[];
  /** Nullable table columns the incoming data lacks (filled with NULL). */
  missing: string[];
  problems: string[];
}

/** Lossless conversions the table can absorb without changing its type. */
const WIDENS: Record<string, string[]> = {
  int64: ['int32', 'int16', 'int8', 'uint32', 'uint16', 'uint8'],
  float64: ['float32'],
};

export function compatibleType(tableSig: string, incomingSig: string): boolean {
  return tableSig === incomingSig || (WIDENS[tableSig]?.includes(incomingSig) ?? false);
}

export function compareSchemas(
  table: ColumnInfo[],
  incoming: ColumnInfo[],
  required: ReadonlySet<string>,
): SchemaDiff {
  const byName = new Map(incoming.map((c) => [c.name, c]));
  const tableNames = new Set(table.map((c) => c.name));
  const problems: string[] = [];
  const missing: string[] = [];
  for (const col of table) {
    const inc = byName.get(col.name);
    if (!inc) {
      if (required.has(col.name)) problems.push(`required column "${col.name}" is missing`);
      else missing.push(col.name);
      continue;
    }
    if (!compatibleType(col.signature, inc.signature))
      problems.push(
        `column "${col.name}" changed type from ${col.signature} to ${inc.signature}${narrowing(col.family, inc.family) ? ' (narrowing)' : ''}`,
      );
  }
  const added = incoming.filter((c) => !tableNames.has(c.name));
  for (const a of added)
    if (required.has(a.name))
      problems.push(`new column "${a.name}" is required but existing rows have no value`);
  return { added, missing, problems };
}

function narrowing(from: TypeFamily, to: TypeFamily): boolean {
  const rank: Partial<Record<TypeFamily, number>> = { bool: 0, int64: 1, numeric: 2, float64: 3, string: 4 };
  const a = rank[from];
  const b = rank[to];
  return a !== undefined && b !== undefined && b < a;
}

/** Contract column → comparable signature (matches the DuckDB/BigQuery normalisers). */
export function contractSignature(t: ColumnType): { family: TypeFamily; signature: string } {
  if (typeof t === 'string') return { family: t, signature: t };
  if ('struct' in t)
    return {
      family: 'struct',
      signature: `struct<${t.struct.map((f) => `${f.name}:${contractSignature(f.type).signature}`).join(',')}>`,
    };
  return { family: 'array', signature: `array<${contractSignature(t.array).signature}>` };
}

const LINEAGE: FieldSpec[] = [
  { name: '_source_uri', type: 'string' },
  { name: '_source_generation', type: 'int64' },
  { name: '_ingested_at', type: 'timestamp' },
];

/** The columns rawToBronze writes for a contract: its columns in order, then lineage. */
export function bronzeColumnsOf(
  contract: DatasetContract,
  typeText: (t: ColumnType) => string,
): ColumnInfo[] {
  return [...storedColumns(contract.columns), ...LINEAGE].map((c) => ({
    name: c.name,
    type: typeText(c.type),
    ...contractSignature(c.type),
    nullable: true,
  }));
}
