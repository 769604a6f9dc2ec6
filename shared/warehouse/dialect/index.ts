/**
 * One model source, two engines. Models are written in the common subset of BigQuery Standard SQL
 * and DuckDB SQL plus a few `@macros` where the two differ (models/README.md):
 *   lexer.ts    finds macro calls outside literals and comments
 *   macros.ts   the macro table: arity, argument checks, expansion
 *   core.ts     the Dialect every engine implements, and the statements common to all
 *   duckdb/, bigquery/   one folder per engine with the same parts (names/types/statements, macros)
 */
export * from './types';
export { Dialect, isoTimestamp } from './core';
export { MACROS, MACRO_NAMES, renderSql, type DialectMacros, type MacroName } from './macros';
export { macroCalls, renderMacros, splitArgs, type MacroCall } from './lexer';
export { DuckDbDialect, SCRATCH_CATALOG } from './duckdb';
export { BigQueryDialect } from './bigquery';
