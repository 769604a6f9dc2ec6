/**
 * Checks that SQL is BigQuery Standard SQL with node-sql-parser (BigQuery grammar), plus a lint for
 * DuckDB-isms the parser would accept. The parser does not know every statement we generate; those
 * are checked by parts (documented in models/README.md):
 *   MERGE             → its ON join, its UPDATE SET (as UPDATE … FROM … WHERE) and its INSERT (as INSERT … SELECT)
 *   BEGIN/COMMIT TRANSACTION, CREATE SCHEMA … OPTIONS → shape only
 *   DROP TABLE IF EXISTS, ADD COLUMN IF NOT EXISTS    → parsed without the IF [NOT] EXISTS
 */
import { Parser } from 'node-sql-parser';

const parser = new Parser();
const parse = (sql: string): void => {
  parser.astify(sql, { database: 'BigQuery' });
};

/** Statements of a generated script (our scripts join statements with `;\n`; literals never contain a raw newline). */
export function statements(sql: string): string[] {
  return sql
    .split(/;\s*\n/)
    .map((s) => s.trim().replace(/;$/, ''))
    .filter(Boolean);
}

const MERGE =
  /^MERGE INTO (`[^`]+`) AS t USING (`[^`]+`) AS s ON ([\s\S]+?)( WHEN MATCHED(?: AND ([\s\S]+?))? THEN UPDATE SET ([\s\S]+?))? WHEN NOT MATCHED THEN INSERT \(([^)]*)\) VALUES \(([\s\S]*)\)$/;

function stripLiterals(sql: string): string {
  return sql.replace(/'(?:[^'\\]|\\.)*'/g, "''").replace(/`[^`]*`/g, '`x`');
}

/** DuckDB syntax that BigQuery would reject or misread (double quotes are strings in BigQuery). */
export function lintBigQuery(sql: string): string[] {
  const s = stripLiterals(sql);
  const problems: string[] = [];
  const rules: [RegExp, string][] = [
    [/"/, 'double quotes (a string in BigQuery, an identifier in DuckDB)'],
    [/::/, ':: cast'],
    [/\bTRY_CAST\b/i, 'TRY_CAST (use @safe_cast)'],
    [/\bEXCLUDE\b/i, 'EXCLUDE (use @star_except)'],
    [/\bTIMESTAMPTZ\b/i, 'TIMESTAMPTZ'],
    [/\bdate_trunc\(\s*''/i, "date_trunc('unit', …) (DuckDB argument order)"],
    [/\bINTERVAL\s*\(/i, 'INTERVAL (n) (DuckDB)'],
    [/\bcount_if\b|\blist_|\bstruct_pack\b|\bepoch_ms\b|\bstrftime\b/i, 'DuckDB-only function'],
  ];
  for (const [re, why] of rules) if (re.test(s)) problems.push(why);
  // Every table reference is a fully qualified `project.dataset.table`, except CTE names.
  const ctes = new Set(
    [...s.matchAll(/(?:\bWITH|,)\s*([A-Za-z_]\w*)\s+AS\s*\(/gi)].map((m) => (m[1] as string).toLowerCase()),
  );
  for (const m of sql.matchAll(
    /\b(?:FROM|JOIN|INTO|USING|UPDATE|TABLE(?: IF (?:NOT )?EXISTS)?)\s+(?![`(]|UNNEST\b|IF\b|SET\b)([A-Za-z_][\w.]*)/gi,
  )) {
    const name = (m[1] as string).toLowerCase();
    if (!ctes.has(name) && !['select', 'with'].includes(name))
      problems.push(`unqualified table reference "${m[1]}"`);
  }
  return problems;
}

/** Throws with the statement and the reason when `sql` is not valid BigQuery SQL. */
export function checkBigQuery(sql: string): void {
  for (const st of statements(sql)) {
    const problems = lintBigQuery(st);
    if (problems.length) throw new Error(`not BigQuery SQL (${problems.join('; ')}):\n${st}`);
    try {
      if (/^(BEGIN|COMMIT) TRANSACTION$/.test(st)) continue;
      if (/^CREATE SCHEMA IF NOT EXISTS `[^`]+` OPTIONS \(location = '[^']+'\)$/.test(st)) continue;
      if (st.startsWith('MERGE')) {
        const m = MERGE.exec(st);
        if (!m) throw new Error('MERGE does not have the generated shape');
        const [, target, source, on, , cond, sets, cols, vals] = m;
        parse(`SELECT 1 FROM ${target} AS t JOIN ${source} AS s ON ${on}`);
        if (sets)
          parse(
            `UPDATE ${target} AS t SET ${sets} FROM ${source} AS s WHERE ${on}${cond ? ` AND ${cond}` : ''}`,
          );
        parse(`INSERT INTO ${target} (${cols}) SELECT ${vals} FROM ${source} AS s`);
        continue;
      }
      parse(
        st
          .replace(/^DROP TABLE IF EXISTS /, 'DROP TABLE ')
          .replace(/ ADD COLUMN IF NOT EXISTS /, ' ADD COLUMN '),
      );
    } catch (err) {
      throw new Error(`BigQuery parser rejects: ${(err as Error).message.slice(0, 300)}\n${st}`);
    }
  }
}
