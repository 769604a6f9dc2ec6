/**
 * Renders deploy/generated/bigquery_tables.tf.json from the contracts the functions use:
 * - contracts/datasets/*.json → a Bronze and a Silver table per dataset (schema, partitioning, clustering);
 * - contracts/events/*.json   → one table per event type in the events dataset, plus `dead_letter`.
 * Gold tables are created by loadWarehouse at run time from the SQL models, so only the dataset is declared.
 */
import { storedColumns, type Sensitivity } from '../../shared/governance/sensitivity';
import fs from 'node:fs';
import path from 'node:path';
import { listDatasets, loadDatasetContract, type DatasetContract } from '../../shared/contracts/dataset';
import { bigqueryField, type BigQueryField, type FieldSpec } from '../../shared/contracts/types';
import { readEventContractFile, type EventContract } from '../../shared/events/contract';
import {
  bigqueryDeadLetterSpec,
  bigqueryTableSpec,
  type BigQueryTableSpec,
} from '../../shared/events/schema';
import { datasetAddress, policyTagAddress, ref, type BqLayer } from './model';

type Json = Record<string, unknown>;

/** Lineage columns rawToBronze appends to every Bronze Parquet file (and Silver keeps). */
export const LINEAGE_FIELDS: FieldSpec[] = [
  { name: '_source_uri', type: 'string', description: 'gs:// URI of the raw object the row came from.' },
  { name: '_source_generation', type: 'int64', description: 'Generation of that raw object.' },
  { name: '_ingested_at', type: 'timestamp', description: 'When rawToBronze converted the object.' },
];

/** `<contractsDir>/events/*.json`, validated exactly as routeEvent validates them. */
export function listEventContracts(contractsDir: string): EventContract[] {
  const dir = path.join(contractsDir, 'events');
  let files: string[];
  try {
    files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  return files.sort().map((f) => readEventContractFile(path.join(dir, f)));
}

/** Bronze/Silver columns are NULLABLE: DuckDB writes every Parquet column OPTIONAL, and BigQuery rejects
 *  loading an OPTIONAL column into a REQUIRED field. rawToBronze already enforces `required`. */
function nullable(f: BigQueryField): BigQueryField {
  return {
    ...f,
    mode: f.mode === 'REQUIRED' ? 'NULLABLE' : f.mode,
    ...(f.fields ? { fields: f.fields.map(nullable) } : {}),
  };
}

type TaggedField = BigQueryField & { policyTags?: { names: string[] } };

/**
 * A `mask` column carries its class's policy tag, so BigQuery shows it in clear to fine-grained
 * readers, masked to masked readers, and refuses it to anyone else. Only on creation: see `table`.
 */
function withPolicyTag(col: FieldSpec & { sensitive?: Sensitivity }, f: BigQueryField): TaggedField {
  return col.sensitive?.policy === 'mask'
    ? { ...f, policyTags: { names: [ref(policyTagAddress(col.sensitive.class), 'name')] } }
    : f;
}

/** One google_bigquery_table body. `loaderOwnsColumns`: see the lifecycle comment below. */
function table(layer: BqLayer, spec: BigQueryTableSpec, loaderOwnsColumns: boolean): Json {
  return {
    dataset_id: ref(datasetAddress(layer), 'dataset_id'),
    table_id: spec.table,
    ...(spec.description ? { description: spec.description } : {}),
    deletion_protection: '${var.deletion_protection}',
    schema: JSON.stringify(spec.schema),
    time_partitioning: { type: spec.timePartitioning.type, field: spec.timePartitioning.field },
    ...(spec.clustering?.fields.length ? { clustering: spec.clustering.fields } : {}),
    labels: { 'smelter-layer': layer },
    // Bronze/Silver columns are added at run time by loadWarehouse (ALLOW_FIELD_ADDITION) when a
    // contract grows; Terraform only creates those tables, so it never fights the loader over columns.
    // Consequence for governance: policy tags are set when Terraform creates these tables; a mask column
    // the loader adds later (or a mask declared on an existing column) gets none until the operator
    // patches the schema (deploy/README.md, Governance). Loads keep the tags already on a table.
    // Event tables are streamed into, so Terraform owns their columns (additive changes apply in place).
    ...(loaderOwnsColumns ? { lifecycle: { ignore_changes: ['schema'] } } : {}),
  };
}

/** Bronze and Silver layouts of a dataset contract: its columns (NULLABLE), then the lineage columns. */
export function datasetTableSpecs(c: DatasetContract): {
  bronze: BigQueryTableSpec;
  silver: BigQueryTableSpec;
} {
  const schema = [...storedColumns(c.columns), ...LINEAGE_FIELDS].map((col) =>
    withPolicyTag(col, nullable(bigqueryField(col))),
  );
  const clustering = c.clusterColumns?.length ? { clustering: { fields: [...c.clusterColumns] } } : {};
  const base = {
    table: c.dataset,
    ...(c.description ? { description: c.description } : {}),
    schema,
    ...clustering,
  };
  // Silver partitions by the contract's date column (ingestion time without one). Bronze must match what
  // loadWarehouse's load jobs declare (shared/warehouse/service.ts): by ingestion day, clustered by source
  // generation — a load into a table with another partitioning spec is rejected.
  const silverPartitioning = { type: 'DAY' as const, field: c.partitionColumn ?? '_ingested_at' };
  const bronze = {
    ...base,
    timePartitioning: { type: 'DAY' as const, field: '_ingested_at' },
    clustering: { fields: ['_source_generation'] },
  };
  return { bronze, silver: { ...base, timePartitioning: silverPartitioning } };
}

/** An event table: the router's layout (drop fields gone, hash fields strings), tags on `mask` fields. */
export function eventTableSpec(c: EventContract): BigQueryTableSpec {
  const spec = bigqueryTableSpec(c);
  const masked = new Map(c.fields.filter((f) => f.sensitive?.policy === 'mask').map((f) => [f.name, f]));
  return {
    ...spec,
    schema: spec.schema.map((f) => {
      const col = masked.get(f.name);
      return col ? withPolicyTag(col, f) : f;
    }),
  };
}

export function renderTables(contractsDir: string): Json {
  const resources: Record<string, Json> = {};
  const add = (name: string, body: Json): void => {
    if (resources[name]) throw new Error(`Duplicate BigQuery table resource ${name}`);
    resources[name] = body;
  };

  for (const name of listDatasets(contractsDir)) {
    const specs = datasetTableSpecs(loadDatasetContract(contractsDir, name));
    add(`bronze_${name}`, table('bronze', specs.bronze, true));
    add(`silver_${name}`, table('silver', specs.silver, true));
  }
  for (const c of listEventContracts(contractsDir))
    add(`events_${c.table}`, table('events', eventTableSpec(c), false));
  const dl = bigqueryDeadLetterSpec();
  add(`events_${dl.table}`, table('events', dl, false));

  return {
    '//': 'GENERATED by deploy/scripts/generate.ts from contracts/datasets and contracts/events. Do not edit.',
    resource: { google_bigquery_table: resources },
  };
}
