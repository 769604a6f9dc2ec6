/**
 * Governance on BigQuery (issue 13 §2), checked offline on the merged Terraform model: the taxonomy,
 * one policy tag and one data policy per sensitivity class with the class's masking rule, who reads
 * clear or masked values, and the policy tags on the `mask` columns of every generated table.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { listDatasets, loadDatasetContract } from '../../shared/contracts/dataset';
import { SENSITIVE_CLASSES } from '../../shared/governance/sensitivity';
import type { EventFieldSpec } from '../../shared/events/contract';
import { sensitiveFields } from '../../shared/events/privacy';
import { listEventContracts } from '../../deploy/scripts/render-tables';
import { FUNCTIONS } from '../../shared/manifest';
import { packageRoot } from '../../shared/paths';
import { at, loadModel, many, resourcesOfType, type Body, type TfModel } from './terraform-model';

const DEPLOY = path.join(packageRoot, 'deploy');
const CONTRACTS = path.join(packageRoot, 'contracts');

/** BigQuery's predefined masking expression per class, written out independently of MASKING_RULE. */
const EXPECTED_RULE: Record<string, string> = {
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
/** Functions that must read `mask` columns in clear (Bronze → Silver MERGE, audits). */
const READS_CLEAR = ['load-warehouse'];

interface Field {
  name: string;
  type: string;
  policyTags?: { names: string[] };
  fields?: Field[];
}

describe('deploy: governance of personal data on BigQuery', function () {
  let m: TfModel;
  before(async function () {
    m = await loadModel(DEPLOY);
  });
  const res = (type: string, name: string): Body => {
    const r = m.resources.get(`${type}.${name}`);
    assert.ok(r, `${type}.${name} is declared`);
    return r.body;
  };

  it('a taxonomy with fine-grained access control, in the datasets’ location', function () {
    const taxonomies = resourcesOfType(m, 'google_data_catalog_taxonomy');
    assert.deepEqual(
      taxonomies.map((t) => t.name),
      ['personal_data'],
    );
    const t = res('google_data_catalog_taxonomy', 'personal_data');
    assert.deepEqual(t.activated_policy_types, ['FINE_GRAINED_ACCESS_CONTROL']);
    assert.equal(t.region, '${local.governance_location}');
    assert.equal(m.locals.governance_location, '${lower(local.bq_location)}');
  });

  it('one policy tag and one masking data policy per class, with the class’s predefined rule', function () {
    assert.deepEqual([...SENSITIVE_CLASSES].sort(), Object.keys(EXPECTED_RULE).sort());
    const tags = resourcesOfType(m, 'google_data_catalog_policy_tag');
    assert.deepEqual(tags.map((t) => t.name).sort(), Object.keys(EXPECTED_RULE).sort());
    const policies = resourcesOfType(m, 'google_bigquery_datapolicy_data_policy');
    assert.deepEqual(policies.map((p) => p.name).sort(), Object.keys(EXPECTED_RULE).sort());
    const ids = new Set<string>();
    for (const [cls, rule] of Object.entries(EXPECTED_RULE)) {
      const tag = res('google_data_catalog_policy_tag', cls);
      assert.equal(tag.taxonomy, '${google_data_catalog_taxonomy.personal_data.id}');
      assert.equal(tag.display_name, cls);
      const p = res('google_bigquery_datapolicy_data_policy', cls);
      assert.equal(p.data_policy_type, 'DATA_MASKING_POLICY');
      assert.equal(at(p, 'data_masking_policy.predefined_expression'), rule, cls);
      assert.equal(p.policy_tag, `\${google_data_catalog_policy_tag.${cls}.name}`);
      assert.equal(p.location, '${local.governance_location}');
      ids.add(String(p.data_policy_id));
    }
    assert.equal(ids.size, SENSITIVE_CLASSES.length, 'data policy ids are distinct');
  });

  it('clear values: fine-grained reader on each tag for pii_readers only (and the loader, on the taxonomy)', function () {
    const grants = resourcesOfType(m, 'google_data_catalog_policy_tag_iam_member');
    assert.deepEqual(
      grants.map((g) => g.name).sort(),
      Object.keys(EXPECTED_RULE)
        .map((c) => `${c}_pii_readers`)
        .sort(),
    );
    for (const g of grants) {
      const cls = g.name.replace(/_pii_readers$/, '');
      assert.equal(g.body.policy_tag, `\${google_data_catalog_policy_tag.${cls}.name}`);
      assert.equal(g.body.role, 'roles/datacatalog.categoryFineGrainedReader');
      assert.equal(g.body.for_each, '${toset(var.pii_readers)}');
      assert.equal(g.body.member, '${each.value}');
    }
    const taxonomyGrants = resourcesOfType(m, 'google_data_catalog_taxonomy_iam_member');
    const sa = (name: string): string => {
      const key = name.replace(/-/g, '_');
      assert.ok(FUNCTIONS.some((f) => f.name === name));
      return `serviceAccount:\${google_service_account.fn_${key}.email}`;
    };
    assert.deepEqual(
      taxonomyGrants.map((g) => `${String(g.body.member)} ${String(g.body.role)} ${String(g.body.taxonomy)}`),
      READS_CLEAR.map(
        (f) =>
          `${sa(f)} roles/datacatalog.categoryFineGrainedReader \${google_data_catalog_taxonomy.personal_data.name}`,
      ),
    );
  });

  it('masked values: masked reader on each data policy for analysts (and the dashboard, below)', function () {
    const grants = resourcesOfType(m, 'google_bigquery_datapolicy_data_policy_iam_member').filter(
      (g) => g.body.member === '${each.value}',
    );
    assert.deepEqual(
      grants.map((g) => g.name).sort(),
      Object.keys(EXPECTED_RULE)
        .map((c) => `${c}_analysts`)
        .sort(),
    );
    for (const g of grants) {
      const cls = g.name.replace(/_analysts$/, '');
      assert.equal(g.body.data_policy_id, `\${google_bigquery_datapolicy_data_policy.${cls}.data_policy_id}`);
      assert.equal(g.body.role, 'roles/bigquerydatapolicy.maskedReader');
      assert.equal(g.body.for_each, '${toset(var.analysts)}');
      assert.equal(g.body.member, '${each.value}');
      assert.equal(g.body.location, '${local.governance_location}');
    }
  });

  it('the dashboard reads as an analyst: masked reader on every data policy, never a fine-grained reader', function () {
    const dashboard = FUNCTIONS.find((f) => f.entryPoint === 'dashboard');
    assert.ok(dashboard);
    const fn = res('google_cloudfunctions2_function', dashboard.name.replace(/-/g, '_'));
    const email = String(at(fn, 'service_config.service_account_email'));
    const member = `serviceAccount:${email}`;
    const masked = resourcesOfType(m, 'google_bigquery_datapolicy_data_policy_iam_member').filter(
      (g) => g.body.member === member,
    );
    assert.deepEqual(
      masked.map((g) => String(g.body.data_policy_id)).sort(),
      Object.keys(EXPECTED_RULE)
        .map((c) => `\${google_bigquery_datapolicy_data_policy.${c}.data_policy_id}`)
        .sort(),
    );
    for (const g of masked) {
      assert.equal(g.body.role, 'roles/bigquerydatapolicy.maskedReader');
      assert.equal(g.body.location, '${local.governance_location}');
    }
    // The function waits for its grants like for its other roles.
    for (const g of masked)
      assert.ok(
        (fn.depends_on as string[]).includes(`google_bigquery_datapolicy_data_policy_iam_member.${g.name}`),
      );
    const fineGrained = [
      ...resourcesOfType(m, 'google_data_catalog_policy_tag_iam_member'),
      ...resourcesOfType(m, 'google_data_catalog_taxonomy_iam_member'),
    ].filter((g) => g.body.member === member);
    assert.deepEqual(fineGrained, [], 'the dashboard never sees clear values');
  });

  it('readers run queries: jobUser on the project for analysts and pii_readers, nothing broader', function () {
    const g = res('google_project_iam_member', 'readers_job_user');
    assert.equal(g.role, 'roles/bigquery.jobUser');
    assert.equal(g.member, '${each.value}');
    assert.equal(g.for_each, '${local.warehouse_readers}');
    assert.equal(g.project, '${var.project}');
    assert.equal(m.locals.warehouse_readers, '${setunion(var.analysts, var.pii_readers)}');
    const readerRoles = resourcesOfType(m, 'google_project_iam_member')
      .filter((x) => x.body.member === '${each.value}')
      .map((x) => String(x.body.role));
    assert.deepEqual(readerRoles, ['roles/bigquery.jobUser']);
  });

  it('event tables: drop fields absent, hash fields STRING, the policy tag on every mask field', function () {
    const tables = resourcesOfType(m, 'google_bigquery_table');
    let tagged = 0;
    for (const c of listEventContracts(CONTRACTS)) {
      const t = tables.find(
        (x) =>
          x.body.dataset_id === '${google_bigquery_dataset.events.dataset_id}' && x.body.table_id === c.table,
      );
      assert.ok(t, `events.${c.table}`);
      const schema = JSON.parse(String(t.body.schema)) as Field[];
      const walk = (fields: readonly EventFieldSpec[], stored: Field[] | undefined, at: string): void => {
        for (const f of fields) {
          const s = stored?.find((x) => x.name === f.name);
          const where = `events.${c.table}.${at}${f.name}`;
          if (f.sensitive?.policy === 'drop') {
            assert.equal(s, undefined, `${where} is dropped`);
            continue;
          }
          assert.ok(s, where);
          if (f.sensitive?.policy === 'hash') assert.equal(s.type, 'STRING', `${where} holds a hash`);
          if (f.sensitive?.policy === 'mask') {
            tagged++;
            assert.deepEqual(s.policyTags, {
              names: [`\${google_data_catalog_policy_tag.${f.sensitive.class}.name}`],
            });
          } else assert.equal(s.policyTags, undefined, `${where} has no tag`);
          const ty = f.type;
          if (typeof ty === 'object' && 'struct' in ty)
            walk(ty.struct as EventFieldSpec[], s.fields, `${at}${f.name}.`);
          if (typeof ty === 'object' && 'array' in ty && typeof ty.array === 'object' && 'struct' in ty.array)
            walk(ty.array.struct as EventFieldSpec[], s.fields, `${at}${f.name}[].`);
        }
      };
      walk(c.fields, schema, '');
    }
    assert.ok(tagged > 0, 'the bundled event contracts declare a mask field');
    const declared = listEventContracts(CONTRACTS).flatMap((c) => sensitiveFields(c).map((f) => f.policy));
    assert.ok(declared.includes('hash') && declared.includes('mask'), 'and hash fields');
  });

  it('Bronze and Silver schemas carry the class’s policy tag on every mask column, and only there', function () {
    const tables = resourcesOfType(m, 'google_bigquery_table');
    let tagged = 0;
    for (const name of listDatasets(CONTRACTS)) {
      const c = loadDatasetContract(CONTRACTS, name);
      for (const layer of ['bronze', 'silver']) {
        const t = tables.find(
          (x) =>
            x.body.dataset_id === `\${google_bigquery_dataset.${layer}.dataset_id}` &&
            x.body.table_id === name,
        );
        assert.ok(t, `${layer}.${name}`);
        const schema = JSON.parse(String(t.body.schema)) as Field[];
        for (const col of c.columns) {
          const f = schema.find((x) => x.name === col.name);
          if (col.sensitive?.policy === 'drop') {
            assert.equal(f, undefined, `${layer}.${name}.${col.name} is dropped`);
            continue;
          }
          assert.ok(f, `${layer}.${name}.${col.name}`);
          if (col.sensitive?.policy === 'mask') {
            tagged++;
            assert.deepEqual(
              f.policyTags,
              { names: [`\${google_data_catalog_policy_tag.${col.sensitive.class}.name}`] },
              `${layer}.${name}.${col.name}`,
            );
          } else assert.equal(f.policyTags, undefined, `${layer}.${name}.${col.name} has no tag`);
        }
      }
    }
    assert.ok(tagged > 0, 'the bundled contracts declare mask columns');
    // The tags reach the tables only through the generated schema (Terraform creates the tables).
    for (const t of tables)
      for (const f of JSON.parse(String(t.body.schema)) as Field[])
        for (const n of many(f.policyTags?.names))
          assert.match(String(n), /^\$\{google_data_catalog_policy_tag\.\w+\.name\}$/);
  });
});
