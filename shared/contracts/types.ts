/**
 * The column type vocabulary shared by dataset contracts (files) and event contracts (messages), and
 * its mapping to DuckDB and BigQuery types.
 */
export type ScalarType = 'string' | 'int64' | 'float64' | 'numeric' | 'bool' | 'date' | 'timestamp' | 'json';
export type ColumnType = ScalarType | { struct: FieldSpec[] } | { array: ColumnType };

export interface FieldSpec {
  name: string;
  type: ColumnType;
  /** Required columns must be present and non-null (after defaults). */
  required?: boolean;
  description?: string;
  /** Dataset contracts: other JSON keys (or dotted paths) of a struct field, as for columns. */
  aliases?: string[];
}

export const SCALAR_TYPES: readonly ScalarType[] = [
  'string',
  'int64',
  'float64',
  'numeric',
  'bool',
  'date',
  'timestamp',
  'json',
];

export function isScalar(t: ColumnType): t is ScalarType {
  return typeof t === 'string';
}

const quoteIdent = (s: string): string => `"${s.replace(/"/g, '""')}"`;

/** DuckDB type. Timestamps are TIMESTAMPTZ so Parquet carries isAdjustedToUTC=true (BigQuery TIMESTAMP). */
export function duckdbType(t: ColumnType): string {
  if (isScalar(t)) {
    switch (t) {
      case 'string':
        return 'VARCHAR';
      case 'int64':
        return 'BIGINT';
      case 'float64':
        return 'DOUBLE';
      case 'numeric':
        return 'DECIMAL(38,9)';
      case 'bool':
        return 'BOOLEAN';
      case 'date':
        return 'DATE';
      case 'timestamp':
        return 'TIMESTAMPTZ';
      case 'json':
        return 'JSON';
    }
  }
  if ('struct' in t)
    return `STRUCT(${t.struct.map((f) => `${quoteIdent(f.name)} ${duckdbType(f.type)}`).join(', ')})`;
  return `${duckdbType(t.array)}[]`;
}

export type BigQueryField = {
  name: string;
  type: string;
  mode: 'NULLABLE' | 'REQUIRED' | 'REPEATED';
  fields?: BigQueryField[];
  description?: string;
};

/** BigQuery schema field for a column. Arrays of arrays are not representable and are rejected by validation. */
export function bigqueryField(f: FieldSpec): BigQueryField {
  const base = (t: ColumnType): Omit<BigQueryField, 'name' | 'mode'> => {
    if (isScalar(t)) {
      const map: Record<ScalarType, string> = {
        string: 'STRING',
        int64: 'INT64',
        float64: 'FLOAT64',
        numeric: 'NUMERIC',
        bool: 'BOOL',
        date: 'DATE',
        timestamp: 'TIMESTAMP',
        json: 'JSON',
      };
      return { type: map[t] };
    }
    if ('struct' in t) return { type: 'RECORD', fields: t.struct.map(bigqueryField) };
    return base(t.array);
  };
  const isArray = !isScalar(f.type) && 'array' in f.type;
  const inner = isArray ? (f.type as { array: ColumnType }).array : f.type;
  return {
    name: f.name,
    ...base(inner),
    mode: isArray ? 'REPEATED' : f.required ? 'REQUIRED' : 'NULLABLE',
    ...(f.description ? { description: f.description } : {}),
  };
}

/** Validates a type declaration read from a contract file; returns a list of problems. */
export function typeProblems(t: unknown, where: string): string[] {
  if (typeof t === 'string')
    return (SCALAR_TYPES as readonly string[]).includes(t) ? [] : [`${where}: unknown type "${t}"`];
  if (t && typeof t === 'object' && !Array.isArray(t)) {
    const o = t as Record<string, unknown>;
    if (Array.isArray(o.struct)) {
      if (o.struct.length === 0) return [`${where}: struct has no fields`];
      return o.struct.flatMap((f: unknown, i) => {
        const ff = f as Partial<FieldSpec> | null;
        if (!ff || typeof ff.name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(ff.name))
          return [`${where}.struct[${i}]: field needs a name of letters, digits and _`];
        return typeProblems(ff.type, `${where}.${ff.name}`);
      });
    }
    if ('array' in o) {
      if (o.array && typeof o.array === 'object' && 'array' in (o.array as object))
        return [`${where}: arrays of arrays are not supported (BigQuery cannot store them)`];
      return typeProblems(o.array, `${where}[]`);
    }
  }
  return [`${where}: type must be one of ${SCALAR_TYPES.join(', ')}, {"struct": [...]} or {"array": type}`];
}
