/**
 * The dashboard reads as `analyst` (issue 13): whoever opens it sees personal data masked. On BigQuery
 * that is its service account's grant (masked reader on the data policies, deploy/); locally every
 * query that reads a table with `mask` columns is pointed at its `masked_<layer>` view, the same one
 * `smelter query --role analyst` reads. A missing view fails the panel rather than showing clear values.
 */
import { toMaskedSchemas } from '../governance/masking';
import type { DashboardWarehouse } from './service';

/** `layer.table` names of the tables that hold `mask` columns. */
export function analystWarehouse(inner: DashboardWarehouse, masked: ReadonlySet<string>): DashboardWarehouse {
  if (inner.dialect.name !== 'duckdb' || masked.size === 0) return inner;
  const only = (layer: string, table: string): boolean => masked.has(`${layer}.${table}`);
  return {
    dialect: inner.dialect,
    query: (sql, params) => inner.query(toMaskedSchemas(sql, only), params),
  };
}
