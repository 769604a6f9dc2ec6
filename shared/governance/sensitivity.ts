/**
 * Personal data, declared per column in dataset and event contracts:
 *   "sensitive": { "class": "email", "policy": "mask" }
 * - `drop`: never leaves the function that reads it (not in Bronze, any table, quarantine or logs);
 * - `hash`: stored as keyed HMAC-SHA256 (hex) of the value, so equal values still join across tables;
 * - `mask`: stored, and shown masked to readers without the PII role (BigQuery: a policy tag and a data
 *   policy with the class's masking rule; locally: `smelter query --role analyst`, same rules in DuckDB).
 */

export const SENSITIVE_CLASSES = [
  'email',
  'name',
  'phone',
  'address',
  'ip',
  'date_of_birth',
  'government_id',
  'payment_card',
  'bank_account',
  'secret',
] as const;
export type SensitiveClass = (typeof SENSITIVE_CLASSES)[number];

export const POLICIES = ['drop', 'hash', 'mask'] as const;
export type Policy = (typeof POLICIES)[number];

export interface Sensitivity {
  class: SensitiveClass;
  policy: Policy;
}

/** BigQuery data-masking rule per class (predefined expressions), mirrored locally in DuckDB. */
export type MaskingRule =
  'EMAIL_MASK' | 'LAST_FOUR_CHARACTERS' | 'DEFAULT_MASKING_VALUE' | 'SHA256' | 'DATE_YEAR' | 'ALWAYS_NULL';

export const MASKING_RULE: Record<SensitiveClass, MaskingRule> = {
  email: 'EMAIL_MASK',
  name: 'DEFAULT_MASKING_VALUE',
  phone: 'LAST_FOUR_CHARACTERS',
  address: 'DEFAULT_MASKING_VALUE',
  ip: 'SHA256',
  date_of_birth: 'DATE_YEAR',
  government_id: 'LAST_FOUR_CHARACTERS',
  payment_card: 'LAST_FOUR_CHARACTERS',
  bank_account: 'LAST_FOUR_CHARACTERS',
  secret: 'ALWAYS_NULL',
};

interface ColumnLike {
  name: string;
  type: unknown;
  sensitive?: unknown;
}

/** Problems of one column's `sensitive` declaration (empty when fine), for contract validation. */
export function sensitivityProblems(col: ColumnLike, where: string, primaryKey: readonly string[]): string[] {
  const s = col.sensitive as Partial<Sensitivity> | undefined;
  if (s === undefined) return [];
  if (!s || typeof s !== 'object') return [`${where}: {"class": …, "policy": "drop" | "hash" | "mask"}`];
  const problems: string[] = [];
  if (!(SENSITIVE_CLASSES as readonly string[]).includes(String(s.class)))
    problems.push(`${where}.class: one of ${SENSITIVE_CLASSES.join(', ')}`);
  if (!(POLICIES as readonly string[]).includes(String(s.policy)))
    problems.push(`${where}.policy: one of ${POLICIES.join(', ')}`);
  const scalar = typeof col.type === 'string';
  if (s.policy === 'drop' && primaryKey.includes(col.name))
    problems.push(
      `${where}.policy: ${col.name} is part of the primary key and cannot be dropped (use "hash": equal values still match)`,
    );
  if (s.policy === 'hash' && !scalar) problems.push(`${where}.policy: only scalar columns can be hashed`);
  if (s.policy === 'mask' && !scalar) problems.push(`${where}.policy: only scalar columns can be masked`);
  if (s.policy === 'mask' && s.class === 'date_of_birth' && col.type !== 'date' && col.type !== 'timestamp')
    problems.push(`${where}.class: date_of_birth masks to the year and needs a date or timestamp column`);
  return problems;
}

export const policyOf = (col: { sensitive?: Sensitivity }): Policy | undefined => col.sensitive?.policy;

/** The columns a dataset stores (Bronze, Silver, table schemas): `drop` left out, `hash` as hex strings. */
export function storedColumns<T extends { type: unknown; sensitive?: Sensitivity }>(cols: readonly T[]): T[] {
  return cols
    .filter((c) => c.sensitive?.policy !== 'drop')
    .map((c) => (c.sensitive?.policy === 'hash' ? { ...c, type: 'string' } : c));
}

/** Per dataset, its declared personal-data columns (for `smelter status`). */
export function sensitiveColumnsOf(
  contracts: readonly { dataset: string; columns: readonly { name: string; sensitive?: Sensitivity }[] }[],
): Record<string, { column: string; class: SensitiveClass; policy: Policy }[]> {
  const out: Record<string, { column: string; class: SensitiveClass; policy: Policy }[]> = {};
  for (const c of contracts) {
    const cols = c.columns.flatMap((x) =>
      x.sensitive ? [{ column: x.name, class: x.sensitive.class, policy: x.sensitive.policy }] : [],
    );
    if (cols.length) out[c.dataset] = cols;
  }
  return out;
}
