/**
 * Offline checks of the Terraform under deploy/ (providers cannot be downloaded here, so no
 * `terraform validate`): the HCL is parsed with @cdktf/hcl2json and merged with the generated JSON,
 * then checked against the trigger manifest and the options table the functions run with.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadConfig, type Config } from '../../shared/config';
import { FUNCTIONS, bucketName, topicName, type FunctionSpec } from '../../shared/manifest';
import { packageRoot } from '../../shared/paths';
import { SENSITIVE_CLASSES } from '../../shared/governance/sensitivity';
import { listSources, loadSourceContract } from '../../shared/pull/contract';
import { BigQueryDialect } from '../../shared/warehouse/dialect';
import { LAYERS } from '../../shared/warehouse/tables';
import {
  at,
  expressions,
  loadModel,
  many,
  one,
  references,
  resourcesOfType,
  soleRef,
  type Block,
  type Body,
  type TfModel,
} from './terraform-model';

const DEPLOY = path.join(packageRoot, 'deploy');

/** Project-level grants GCP offers no narrower scope for; anything else project-wide fails the test. */
const PROJECT_ROLE_ALLOW_LIST: Record<string, string> = {
  'roles/pubsub.publisher':
    'Cloud Storage service agent: Eventarc storage triggers publish to an Eventarc-managed topic unknown in advance',
  'roles/bigquery.jobUser': 'functions that run BigQuery load/query jobs: jobs are project resources',
  'roles/eventarc.eventReceiver': 'Eventarc trigger identities: checked on the project',
  'roles/logging.logWriter': 'the dedicated build identity: build logs have no narrower scope',
};

/**
 * Buckets a function only ever creates objects in (every write ifAbsent), written out independently of
 * the manifest: these must not get delete/overwrite (objectUser).
 */
const CREATE_ONLY: Record<string, string[]> = {
  'ingest-http': ['raw'],
  'raw-to-bronze': ['bronze'],
  'pull-source': ['raw'],
};

/** BigQuery access each manifest value implies, written out independently of the generator. */
const EXPECTED_BIGQUERY: Record<
  FunctionSpec['bigquery'],
  { datasets: Record<string, string>; jobUser: boolean }
> = {
  none: { datasets: {}, jobUser: false },
  'bronze-write': { datasets: { bronze: 'roles/bigquery.dataEditor' }, jobUser: true },
  'events-write': { datasets: { events: 'roles/bigquery.dataEditor' }, jobUser: false },
  'gold-read': { datasets: { gold: 'roles/bigquery.dataViewer' }, jobUser: true },
  warehouse: {
    datasets: {
      bronze: 'roles/bigquery.dataEditor',
      silver: 'roles/bigquery.dataEditor',
      gold: 'roles/bigquery.dataEditor',
      events: 'roles/bigquery.dataViewer',
      ops: 'roles/bigquery.dataEditor',
    },
    jobUser: true,
  },
};

/** Functions that hash `hash` columns/fields, written out independently of the manifest. */
const HASHES_PII = ['raw-to-bronze', 'route-event'];
/** Functions that read personal data masked, as an analyst (the dashboard). */
const READS_MASKED_PII = ['dashboard'];
/** Functions that read `mask` columns in clear (the warehouse loader), written out independently. */
const READS_CLEAR_PII = ['load-warehouse'];
/** What each warehouse reader may do per dataset: read Silver and Gold, nothing else. */
const READER_DATASETS = ['gold', 'silver'];
const WRITE_ROLES = /^roles\/bigquery\.(dataEditor|dataOwner|admin)$/;

const IAM_TYPE = /_iam_(member|binding|policy|audit_config)$/;
/** Bundled sources whose contract declares auth (each gets a Secret Manager secret). */
const SECRET_SOURCES = listSources(path.join(packageRoot, 'contracts')).filter(
  (s) => loadSourceContract(path.join(packageRoot, 'contracts'), s).auth.type !== 'none',
);

describe('deploy: Terraform configuration', function () {
  let m: TfModel;
  let cfg: Config;
  /** `google_storage_bucket.raw` → the name the functions see for it, through the real options parser. */
  let seenAs: (address: string) => string;

  before(async function () {
    m = await loadModel(DEPLOY);
    // Each Terraform reference in the functions' environment becomes a distinct, valid placeholder;
    // loadConfig() then tells which resource each bucket/topic option points at.
    const placeholder = (r: string): string => 'tf-' + r.replace(/\.(name|id)$/, '').replace(/[._]/g, '-');
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(m.locals.smelter_env as Record<string, unknown>)) {
      const r = soleRef(v);
      env[k] =
        r === 'var.project'
          ? 'test-project'
          : r === 'local.dataset_prefix'
            ? 'tf_prefix'
            : r === 'local.bq_location'
              ? 'EU'
              : r
                ? placeholder(r)
                : String(v);
    }
    cfg = loadConfig(env as NodeJS.ProcessEnv);
    seenAs = (address) => placeholder(address);
  });

  const fnOf = (f: FunctionSpec): Block => {
    const all = resourcesOfType(m, 'google_cloudfunctions2_function').filter(
      (r) => at(r.body, 'build_config.entry_point') === f.entryPoint,
    );
    assert.equal(
      all.length,
      1,
      `exactly one google_cloudfunctions2_function with entry_point ${f.entryPoint}`,
    );
    return all[0] as Block;
  };
  const address = (b: Block): string => `${b.type}.${b.name}`;
  /** `${google_storage_bucket.raw.name}` → `google_storage_bucket.raw` (and checks it exists). */
  const target = (v: unknown, attr: string): string => {
    const r = soleRef(v);
    assert.ok(r && r.endsWith(`.${attr}`), `${JSON.stringify(v)} should be a reference to …${attr}`);
    const addr = (r as string).slice(0, -attr.length - 1);
    assert.ok(m.resources.has(addr), `${addr} is declared`);
    return addr;
  };
  const iamResources = (): Block[] => [...m.resources.values()].filter((r) => IAM_TYPE.test(r.type));
  const grantsTo = (member: string): Block[] => iamResources().filter((r) => r.body.member === member);
  const saMember = (saAddress: string): string => `serviceAccount:\${${saAddress}.email}`;

  it('every reference resolves to a declared variable, local, resource or data source', function () {
    const declared = new Set([
      ...[...m.variables.keys()].map((v) => `var.${v}`),
      ...Object.keys(m.locals).map((l) => `local.${l}`),
      ...m.resources.keys(),
      ...[...m.data.keys()].map((d) => `data.${d}`),
    ]);
    const problems: string[] = [];
    const bodies: [string, unknown][] = [
      ...[...m.resources.values()].map((r): [string, unknown] => [address(r), r.body]),
      ...[...m.data.values()].map((r): [string, unknown] => [`data.${address(r)}`, r.body]),
      ...[...m.outputs.entries()].map(([k, v]): [string, unknown] => [`output.${k}`, v]),
      ['locals', m.locals],
    ];
    for (const [where, body] of bodies) {
      const exprs = expressions(body);
      // depends_on in Terraform JSON is a list of bare addresses.
      for (const d of many((body as Body).depends_on) as unknown[])
        if (typeof d === 'string' && !d.startsWith('${')) exprs.push(d);
      for (const ref of exprs.flatMap(references)) if (!declared.has(ref)) problems.push(`${where} → ${ref}`);
    }
    assert.deepEqual(problems, []);
  });

  it('every manifest function is a gen2 function with its entry point, nodejs22+ runtime and manifest settings', function () {
    const runtimeVar = m.variables.get('runtime');
    assert.ok(runtimeVar, 'variable runtime');
    const condition = String(one(runtimeVar.validation).condition);
    const re = new RegExp(/regex\("([^"]+)"/.exec(condition)?.[1] ?? '^$');
    for (const ok of ['nodejs22', 'nodejs24']) assert.ok(re.test(ok), `${ok} is accepted`);
    for (const bad of ['nodejs20', 'nodejs18', 'python312']) assert.ok(!re.test(bad), `${bad} is refused`);

    assert.deepEqual(
      m.locals.function_defaults,
      Object.fromEntries(
        FUNCTIONS.map((f) => [
          f.name,
          {
            memory: f.memory,
            timeout_seconds: f.timeoutSeconds,
            max_instances: f.maxInstances,
            concurrency: f.concurrency,
          },
        ]),
      ),
    );
    const fnResources = resourcesOfType(m, 'google_cloudfunctions2_function');
    assert.equal(fnResources.length, FUNCTIONS.length, 'no function outside the manifest');
    const runtimeAccounts = new Set<string>();
    for (const f of FUNCTIONS) {
      const fn = fnOf(f).body;
      const runtime = at(fn, 'build_config.runtime');
      const value = soleRef(runtime) === 'var.runtime' ? runtimeVar.default : runtime;
      const major = Number(/^nodejs(\d+)$/.exec(String(value))?.[1]);
      assert.ok(major >= 22, `${f.name}: runtime ${String(value)} is nodejs22 or newer`);
      assert.equal(fn.name, `\${var.name_prefix}-${f.name}`);
      const sc = one(fn.service_config);
      for (const [attr, key] of [
        ['available_memory', 'memory'],
        ['timeout_seconds', 'timeout_seconds'],
        ['max_instance_count', 'max_instances'],
        ['max_instance_request_concurrency', 'concurrency'],
      ] as const)
        assert.equal(
          sc[attr],
          `\${local.functions["${f.name}"].${key}}`,
          `${f.name}: ${attr} from the manifest defaults + overrides`,
        );
      const sa = target(sc.service_account_email, 'email');
      assert.ok(!runtimeAccounts.has(sa), `${f.name} has its own service account`);
      runtimeAccounts.add(sa);
      assert.ok(
        target(at(fn, 'build_config.source.storage_source.object'), 'name').startsWith(
          'google_storage_bucket_object.',
        ),
      );
    }
  });

  it('functions run with SMELTER_BACKEND=gcp and the same buckets, topics and datasets Terraform creates', function () {
    assert.equal(cfg.backend, 'gcp');
    assert.equal(cfg.project, 'test-project');
    for (const f of FUNCTIONS) {
      const env = at(fnOf(f).body, 'service_config.environment_variables');
      // Terraform's values are merged last, so extra_env cannot override them.
      assert.equal(
        String(env),
        f.nodeOptions
          ? `\${merge(var.extra_env, local.smelter_env, { NODE_OPTIONS = "${f.nodeOptions}" })}`
          : '${merge(var.extra_env, local.smelter_env)}',
        `${f.name} environment`,
      );
    }
    const buckets = (['raw', 'bronze', 'quarantine', 'archive'] as const).map((b) => bucketName(cfg, b));
    const topics = (['events', 'refresh', 'deadLetter', 'pull'] as const).map((t) => topicName(cfg, t));
    for (const [names, type] of [
      [buckets, 'google_storage_bucket'],
      [topics, 'google_pubsub_topic'],
    ] as const) {
      assert.equal(new Set(names).size, names.length, `${type}: one resource per role`);
      for (const n of names) {
        const res = resourcesOfType(m, type).find((r) => seenAs(address(r)) === n);
        assert.ok(res, `${n} is a declared ${type}`);
      }
    }
    const datasetEnv = m.locals.smelter_env as Record<string, string>;
    assert.equal(datasetEnv.SMELTER_DATASET_PREFIX, '${local.dataset_prefix}');
    assert.equal(datasetEnv.SMELTER_BQ_LOCATION, '${local.bq_location}');
    // One dataset per warehouse layer the loader and router address (<prefix>_<layer>).
    assert.deepEqual(
      resourcesOfType(m, 'google_bigquery_dataset')
        .map((d) => d.name)
        .sort(),
      [...LAYERS].sort(),
    );
    const dialect = new BigQueryDialect(cfg.project, cfg.datasetPrefix, cfg.bigqueryLocation);
    for (const layer of LAYERS) {
      const ds = m.resources.get(`google_bigquery_dataset.${layer}`);
      assert.ok(ds, `dataset ${layer}`);
      assert.equal(ds.body.dataset_id, `\${local.dataset_prefix}_${layer}`);
      // The loader's BigQuery dialect addresses the same dataset for this layer.
      assert.equal(
        String(ds.body.dataset_id).replace('${local.dataset_prefix}', cfg.datasetPrefix),
        dialect.dataset(layer),
      );
      assert.equal(ds.body.location, '${local.bq_location}');
    }
  });

  it('storage triggers: Eventarc finalize on the manifest bucket, with retries, invoked by a dedicated identity', function () {
    for (const f of FUNCTIONS) {
      const fn = fnOf(f);
      const storage = f.triggers.filter((t) => t.kind === 'storage.finalized');
      const et = fn.body.event_trigger;
      if (storage.length === 0) {
        assert.equal(
          et,
          undefined,
          `${f.name}: no Eventarc trigger (Pub/Sub goes through owned subscriptions)`,
        );
        continue;
      }
      const t = storage[0] as Extract<FunctionSpec['triggers'][number], { kind: 'storage.finalized' }>;
      const trigger = one(et);
      assert.equal(trigger.event_type, 'google.cloud.storage.object.v1.finalized');
      assert.equal(trigger.event_type, t.eventType);
      assert.equal(trigger.retry_policy, 'RETRY_POLICY_RETRY');
      const filters = many(trigger.event_filters);
      assert.equal(filters.length, 1);
      assert.equal(filters[0]?.attribute, 'bucket');
      assert.equal(
        seenAs(target(filters[0]?.value, 'name')),
        bucketName(cfg, t.bucket),
        `${f.name} listens on the ${t.bucket} bucket`,
      );
      const invoker = saMember(target(trigger.service_account_email, 'email'));
      const invokes = grantsTo(invoker).filter((g) => g.body.role === 'roles/run.invoker');
      assert.equal(invokes.length, 1);
      assert.equal(
        invokes[0]?.body.name,
        `\${${address(fn)}.service_config[0].service}`,
        'run.invoker on this function only',
      );
    }
  });

  it('pubsub triggers: a Terraform-owned OIDC push subscription with retry and dead-letter policies', function () {
    const subs = resourcesOfType(m, 'google_pubsub_subscription');
    const deadLetterTopic = resourcesOfType(m, 'google_pubsub_topic').find(
      (r) => seenAs(address(r)) === cfg.deadLetterTopic,
    );
    assert.ok(deadLetterTopic);
    for (const f of FUNCTIONS) {
      const fn = fnOf(f);
      const uri = `\${${address(fn)}.service_config[0].uri}`;
      for (const t of f.triggers) {
        if (t.kind !== 'pubsub') continue;
        const mine = subs.filter((s) =>
          String(at(s.body, 'push_config.push_endpoint') ?? '').startsWith(uri),
        );
        const onTopic = mine.filter((s) => seenAs(target(s.body.topic, 'id')) === topicName(cfg, t.topic));
        assert.equal(onTopic.length, 1, `${f.name}: one push subscription on ${t.topic}`);
        const sub = onTopic[0] as Block;
        const topicAddr = target(sub.body.topic, 'id');
        assert.equal(
          at(sub.body, 'push_config.push_endpoint'),
          `${uri}/projects/\${var.project}/topics/\${${topicAddr}.name}`,
          'functions-framework builds the messagePublished CloudEvent from this path',
        );
        assert.equal(sub.body.ack_deadline_seconds, t.ackDeadlineSeconds);
        const oidc = one(at(sub.body, 'push_config.oidc_token'));
        assert.equal(oidc.audience, uri);
        const invoker = saMember(target(oidc.service_account_email, 'email'));
        assert.ok(
          grantsTo(invoker).some(
            (g) =>
              g.body.role === 'roles/run.invoker' &&
              g.body.name === `\${${address(fn)}.service_config[0].service}`,
          ),
          'the push identity may invoke this function',
        );
        const dlp = one(sub.body.dead_letter_policy);
        assert.equal(dlp.max_delivery_attempts, t.maxDeliveryAttempts);
        assert.equal(target(dlp.dead_letter_topic, 'id'), address(deadLetterTopic));
        assert.ok(one(sub.body.retry_policy).minimum_backoff, 'retry policy');
      }
    }
  });

  it('every subscription that feeds a function dead-letters, and Pub/Sub may do the dead-lettering', function () {
    const subs = resourcesOfType(m, 'google_pubsub_subscription');
    const pushed = subs.filter((s) => s.body.push_config !== undefined);
    assert.equal(
      pushed.length,
      FUNCTIONS.flatMap((f) => f.triggers).filter((t) => t.kind === 'pubsub').length,
    );
    // Eventarc-created subscriptions cannot carry a dead-letter policy: no Pub/Sub through Eventarc.
    const eventTypes = [
      ...resourcesOfType(m, 'google_cloudfunctions2_function').map(
        (r) => one(r.body.event_trigger).event_type,
      ),
      ...resourcesOfType(m, 'google_eventarc_trigger').flatMap((r) =>
        many(r.body.matching_criteria).map((c) => c.value),
      ),
    ];
    assert.ok(
      !eventTypes.includes('google.cloud.pubsub.topic.v1.messagePublished'),
      'no Eventarc Pub/Sub trigger',
    );
    const agent = '${local.pubsub_service_agent}';
    assert.match(
      String(m.locals.pubsub_service_agent),
      /^serviceAccount:service-\$\{data\.google_project\.this\.number\}@gcp-sa-pubsub\.iam\.gserviceaccount\.com$/,
    );
    const deadLetterTopic = resourcesOfType(m, 'google_pubsub_topic').find(
      (r) => seenAs(address(r)) === cfg.deadLetterTopic,
    ) as Block;
    for (const s of pushed) {
      const dlp = one(s.body.dead_letter_policy);
      assert.ok(dlp.dead_letter_topic, `${s.name}: dead_letter_policy`);
      assert.ok(Number(dlp.max_delivery_attempts) >= 5 && Number(dlp.max_delivery_attempts) <= 100);
      assert.ok(
        resourcesOfType(m, 'google_pubsub_subscription_iam_member').some(
          (g) =>
            g.body.member === agent &&
            g.body.role === 'roles/pubsub.subscriber' &&
            g.body.subscription === `\${${address(s)}.name}`,
        ),
        `${s.name}: the Pub/Sub service agent can acknowledge what it dead-letters`,
      );
    }
    assert.ok(
      resourcesOfType(m, 'google_pubsub_topic_iam_member').some(
        (g) =>
          g.body.member === agent &&
          g.body.role === 'roles/pubsub.publisher' &&
          g.body.topic === `\${${address(deadLetterTopic)}.id}`,
      ),
      'the Pub/Sub service agent can publish to the dead-letter topic',
    );
    const hold = subs.filter(
      (s) => s.body.topic === `\${${address(deadLetterTopic)}.id}` && s.body.push_config === undefined,
    );
    assert.equal(hold.length, 1, 'a pull subscription keeps dead letters (a topic alone drops them)');
    assert.equal(one(hold[0]?.body.expiration_policy).ttl, '', 'the hold subscription never expires');
  });

  it('IAM: members only, no public principal, project-level grants only from the documented allow-list', function () {
    const iam = iamResources();
    assert.ok(iam.length > 0);
    for (const r of iam) {
      assert.match(
        r.type,
        /_iam_member$/,
        `${address(r)}: additive *_iam_member only (bindings/policies are authoritative)`,
      );
      assert.doesNotMatch(
        r.type,
        /^google_(organization|folder)_/,
        `${address(r)}: nothing above the project`,
      );
      const members = [r.body.member, ...many(r.body.members)].map(String);
      for (const mem of members)
        assert.doesNotMatch(mem, /allUsers|allAuthenticatedUsers/, `${address(r)} is public`);
      assert.doesNotMatch(
        String(r.body.role),
        /^roles\/(owner|editor|viewer)$|admin$/i,
        `${address(r)}: ${String(r.body.role)} is too broad`,
      );
    }
    // Nothing public can come in through defaults either.
    assert.doesNotMatch(
      JSON.stringify([...m.variables.values()].map((v) => v.default)),
      /allUsers|allAuthenticatedUsers/,
    );

    const projectWide = resourcesOfType(m, 'google_project_iam_member');
    for (const g of projectWide)
      assert.ok(
        String(g.body.role) in PROJECT_ROLE_ALLOW_LIST,
        `${address(g)}: ${String(g.body.role)} is project-wide`,
      );
    const byRole = (role: string): string[] =>
      projectWide
        .filter((g) => g.body.role === role)
        .map((g) => String(g.body.member))
        .sort();

    assert.deepEqual(byRole('roles/pubsub.publisher'), ['${local.gcs_service_agent}']);
    assert.equal(
      m.locals.gcs_service_agent,
      'serviceAccount:${data.google_storage_project_service_account.gcs.email_address}',
    );
    const runtimeSa = (f: FunctionSpec): string =>
      saMember(target(at(fnOf(f).body, 'service_config.service_account_email'), 'email'));
    assert.deepEqual(
      byRole('roles/bigquery.jobUser').filter((mem) => mem !== '${each.value}'),
      FUNCTIONS.filter((f) => EXPECTED_BIGQUERY[f.bigquery].jobUser)
        .map(runtimeSa)
        .sort(),
    );
    // …and the warehouse readers, who run their own queries (deploy/governance.tf).
    assert.deepEqual(
      projectWide
        .filter((g) => g.body.role === 'roles/bigquery.jobUser' && g.body.member === '${each.value}')
        .map((g) => String(g.body.for_each)),
      ['${local.warehouse_readers}'],
    );
    const triggerSa = (f: FunctionSpec): string =>
      saMember(target(one(fnOf(f).body.event_trigger).service_account_email, 'email'));
    assert.deepEqual(
      byRole('roles/eventarc.eventReceiver'),
      FUNCTIONS.filter((f) => f.triggers.some((t) => t.kind === 'storage.finalized'))
        .map(triggerSa)
        .sort(),
    );
  });

  it('HTTP functions are private: invokers only from a validated list that refuses public principals', function () {
    const v = m.variables.get('http_invokers');
    assert.ok(v);
    assert.deepEqual(v.default, {});
    const condition = String(one(v.validation).condition);
    const re = new RegExp(/regex\("([^"]+)"/.exec(condition)?.[1] ?? '^$');
    for (const ok of [
      'user:ana@example.com',
      'group:ops@example.com',
      'serviceAccount:up@p.iam.gserviceaccount.com',
    ])
      assert.ok(re.test(ok), ok);
    for (const bad of ['allUsers', 'allAuthenticatedUsers', 'user', ''])
      assert.ok(!re.test(bad), `${bad} is refused`);
    for (const f of FUNCTIONS.filter((x) => x.triggers.some((t) => t.kind === 'http'))) {
      const fn = fnOf(f);
      const invokers = iamResources().filter(
        (g) => g.body.name === `\${${address(fn)}.service_config[0].service}`,
      );
      assert.ok(invokers.length > 0);
      for (const g of invokers) {
        assert.equal(g.body.role, 'roles/run.invoker');
        assert.equal(g.body.member, '${each.value}');
        assert.equal(g.body.for_each, `\${toset(lookup(var.http_invokers, "${f.name}", []))}`);
      }
      assert.equal(at(fn.body, 'service_config.ingress_settings'), '${var.http_ingress}');
    }
    // Reachable from the VPC and a load balancer unless a variable opens it.
    assert.equal(m.variables.get('http_ingress')?.default, 'ALLOW_INTERNAL_AND_GCLB');
    for (const f of FUNCTIONS.filter((x) => !x.triggers.some((t) => t.kind === 'http')))
      assert.equal(
        at(fnOf(f).body, 'service_config.ingress_settings'),
        'ALLOW_INTERNAL_ONLY',
        `${f.name} is internal-only`,
      );
  });

  it('each runtime service account holds exactly the resource-scoped roles its manifest entry implies', function () {
    for (const f of FUNCTIONS) {
      const sa = saMember(target(at(fnOf(f).body, 'service_config.service_account_email'), 'email'));
      const actual = grantsTo(sa)
        .map((g) => {
          const scope =
            g.type === 'google_storage_bucket_iam_member'
              ? `bucket:${seenAs(target(g.body.bucket, 'name'))}`
              : g.type === 'google_pubsub_topic_iam_member'
                ? `topic:${seenAs(target(g.body.topic, 'id'))}`
                : g.type === 'google_bigquery_dataset_iam_member'
                  ? `dataset:${target(g.body.dataset_id, 'dataset_id').split('.')[1]}`
                  : g.type === 'google_project_iam_member'
                    ? 'project'
                    : g.type === 'google_data_catalog_taxonomy_iam_member'
                      ? `taxonomy:${target(g.body.taxonomy, 'name')}`
                      : g.type === 'google_secret_manager_secret_iam_member'
                        ? `secret:${target(g.body.secret_id, 'id')}`
                        : g.type === 'google_bigquery_datapolicy_data_policy_iam_member'
                          ? `datapolicy:${target(g.body.data_policy_id, 'data_policy_id')}`
                          : `${g.type}?`;
          return `${scope} ${String(g.body.role)}`;
        })
        .sort();
      const expected = [
        ...(['raw', 'bronze', 'quarantine', 'archive'] as const)
          .filter((b) => f.reads.includes(b) || f.writes.includes(b))
          .flatMap((b) =>
            !f.writes.includes(b)
              ? [`bucket:${bucketName(cfg, b)} roles/storage.objectViewer`]
              : CREATE_ONLY[f.name]?.includes(b)
                ? [
                    `bucket:${bucketName(cfg, b)} roles/storage.objectCreator`,
                    `bucket:${bucketName(cfg, b)} roles/storage.objectViewer`,
                  ]
                : [`bucket:${bucketName(cfg, b)} roles/storage.objectUser`],
          ),
        ...f.publishes.map((t) => `topic:${topicName(cfg, t)} roles/pubsub.publisher`),
        ...Object.entries(EXPECTED_BIGQUERY[f.bigquery].datasets).map(
          ([layer, role]) => `dataset:${layer} ${role}`,
        ),
        ...(EXPECTED_BIGQUERY[f.bigquery].jobUser ? ['project roles/bigquery.jobUser'] : []),
        // Reads mask columns in clear to build Silver (fine-grained reader on every tag of the taxonomy).
        ...(READS_CLEAR_PII.includes(f.name)
          ? [
              'taxonomy:google_data_catalog_taxonomy.personal_data roles/datacatalog.categoryFineGrainedReader',
            ]
          : []),
        ...(HASHES_PII.includes(f.name)
          ? ['secret:google_secret_manager_secret.pii_hash_key roles/secretmanager.secretAccessor']
          : []),
        // Reads as an analyst: masked reader on every class's data policy.
        ...(READS_MASKED_PII.includes(f.name)
          ? SENSITIVE_CLASSES.map(
              (c) =>
                `datapolicy:google_bigquery_datapolicy_data_policy.${c} roles/bigquerydatapolicy.maskedReader`,
            )
          : []),
        // One secret per source with auth; only the puller may read them.
        ...(f.sourceSecrets
          ? SECRET_SOURCES.map(
              (s) => `secret:google_secret_manager_secret.source_${s} roles/secretmanager.secretAccessor`,
            )
          : []),
      ].sort();
      assert.deepEqual(actual, expected, f.name);
    }
  });

  it('builds run as a dedicated identity that can read the source, push to one repository and log', function () {
    const [sa, ...moreSa] = resourcesOfType(m, 'google_service_account').filter((r) => r.name === 'build');
    assert.ok(sa && moreSa.length === 0);
    assert.equal(sa.body.count, '${local.create_build_sa ? 1 : 0}');
    assert.match(String(m.locals.build_service_account), /google_service_account\.build\[0\]\.id/);
    for (const f of FUNCTIONS) {
      const fn = fnOf(f);
      assert.equal(at(fn.body, 'build_config.service_account'), '${local.build_service_account}');
      assert.equal(
        at(fn.body, 'build_config.docker_repository'),
        '${google_artifact_registry_repository.functions.id}',
      );
    }
    const member = 'serviceAccount:${google_service_account.build[0].email}';
    const grants = iamResources()
      .filter((g) => g.body.member === member)
      .map((g) => `${g.type} ${String(g.body.role)}`)
      .sort();
    assert.deepEqual(grants, [
      'google_artifact_registry_repository_iam_member roles/artifactregistry.writer',
      'google_project_iam_member roles/logging.logWriter',
      'google_storage_bucket_iam_member roles/storage.objectViewer',
    ]);
    const [repo] = resourcesOfType(m, 'google_artifact_registry_repository');
    assert.ok(repo);
    assert.equal(repo.body.format, 'DOCKER');
    assert.ok(repo.body.cleanup_policies, 'old images are cleaned up');
  });

  it('raw objects stay restorable: soft delete (default 30 days) and optional versioning', function () {
    const raw = resourcesOfType(m, 'google_storage_bucket').find((r) => r.name === 'raw');
    assert.ok(raw);
    assert.equal(
      at(raw.body, 'soft_delete_policy.retention_duration_seconds'),
      '${var.raw_soft_delete_days * 86400}',
    );
    assert.equal(at(raw.body, 'versioning.enabled'), '${var.raw_versioning}');
    assert.equal(m.variables.get('raw_soft_delete_days')?.default, 30);
    assert.equal(m.variables.get('raw_versioning')?.default, false);
  });

  it('buckets: uniform access, public access prevention, optional CMEK, lifecycle rules', function () {
    const buckets = resourcesOfType(m, 'google_storage_bucket');
    assert.deepEqual(buckets.map((b) => b.name).sort(), ['archive', 'bronze', 'quarantine', 'raw', 'source']);
    for (const b of buckets) {
      assert.equal(b.body.uniform_bucket_level_access, true, b.name);
      assert.equal(b.body.public_access_prevention, 'enforced', b.name);
      assert.equal(
        one(at(b.body, 'dynamic.encryption')).for_each,
        '${local.bucket_cmek}',
        `${b.name}: CMEK when kms_key_name is set`,
      );
    }
    const actions = (name: string): string[] =>
      many(m.resources.get(`google_storage_bucket.${name}`)?.body.lifecycle_rule).map((r) => {
        const a = one(r.action);
        return `${String(a.type)}${a.storage_class ? ':' + String(a.storage_class) : ''}`;
      });
    assert.ok(
      actions('raw').includes('SetStorageClass:NEARLINE') &&
        actions('raw').includes('SetStorageClass:COLDLINE'),
    );
    assert.ok(actions('bronze').includes('SetStorageClass:NEARLINE'));
    assert.ok(actions('quarantine').includes('Delete'));
    assert.ok(actions('archive').includes('SetStorageClass:COLDLINE'));
    assert.match(String(m.locals.bucket_cmek), /var\.kms_key_name/);
  });

  it('schedules the refresh on the refresh topic, alerts, log metrics and outputs', function () {
    const job = resourcesOfType(m, 'google_cloud_scheduler_job').filter((j) => j.name === 'refresh');
    assert.equal(job.length, 1);
    assert.equal(
      seenAs(target(at(job[0]?.body as Body, 'pubsub_target.topic_name'), 'id')),
      cfg.refreshTopic,
    );

    const policies = resourcesOfType(m, 'google_monitoring_alert_policy').map((p) => JSON.stringify(p.body));
    assert.equal(policies.length, 3);
    assert.ok(
      policies.some((p) => p.includes('num_undelivered_messages') && p.includes('dead_letter_hold')),
      'dead-letter backlog',
    );
    assert.ok(
      policies.some((p) => p.includes('run.googleapis.com/request_count') && p.includes('5xx')),
      'function error rate',
    );
    assert.ok(
      policies.some((p) => p.includes('google_logging_metric.quarantine_writes')),
      'quarantine growth',
    );

    const metrics = resourcesOfType(m, 'google_logging_metric');
    const extractors = metrics.map((x) => x.body.value_extractor).filter(Boolean);
    for (const field of ['rows', 'rejected', 'durationMs'])
      assert.ok(extractors.includes(`EXTRACT(jsonPayload.${field})`), field);
    for (const x of metrics)
      assert.equal(one(x.body.label_extractors).dataset, 'EXTRACT(jsonPayload.dataset)');

    for (const o of ['bucket_names', 'topic_names', 'function_urls'])
      assert.ok(m.outputs.has(o), `output ${o}`);
    const urls = one(m.outputs.get('function_urls')?.value);
    for (const f of FUNCTIONS) assert.equal(urls[f.name], `\${${address(fnOf(f))}.service_config[0].uri}`);
    const names = one(m.outputs.get('bucket_names')?.value);
    for (const b of ['raw', 'bronze', 'quarantine', 'archive']) assert.ok(names[b], `bucket_names.${b}`);
  });

  it('one Cloud Scheduler job per source on the pull topic at its contract schedule (UTC); one secret per source with auth', function () {
    const jobs = resourcesOfType(m, 'google_cloud_scheduler_job').filter((j) => j.name.startsWith('pull_'));
    const sources = listSources(path.join(packageRoot, 'contracts'));
    assert.deepEqual(jobs.map((j) => j.name).sort(), sources.map((s) => `pull_${s}`).sort());
    for (const j of jobs) {
      const c = loadSourceContract(path.join(packageRoot, 'contracts'), j.name.slice(5));
      assert.equal(j.body.schedule, c.schedule);
      assert.equal(j.body.time_zone, 'Etc/UTC');
      assert.equal(seenAs(target(at(j.body, 'pubsub_target.topic_name'), 'id')), cfg.pullTopic);
      assert.equal(
        at(j.body, 'pubsub_target.data'),
        `\${base64encode(jsonencode({ source = "${c.source}" }))}`,
      );
    }
    const secrets = resourcesOfType(m, 'google_secret_manager_secret').filter((x) =>
      x.name.startsWith('source_'),
    );
    assert.deepEqual(secrets.map((x) => x.name).sort(), SECRET_SOURCES.map((s) => `source_${s}`).sort());
    for (const x of secrets) {
      assert.equal(x.body.secret_id, `\${var.name_prefix}-source-${x.name.slice(7).replace(/_/g, '-')}`);
      // No version: the value never passes through Terraform or its state.
    }
    assert.equal(resourcesOfType(m, 'google_secret_manager_secret_version').length, 0);
    assert.equal(
      (m.locals.smelter_env as Record<string, string>).SMELTER_SOURCE_SECRET_PREFIX,
      '${var.name_prefix}-source-',
    );
  });

  it('the PII hash key: a secret with no version, mounted as SMELTER_PII_HASH_KEY into exactly the functions that hash, readable only by them', function () {
    const secret = m.resources.get('google_secret_manager_secret.pii_hash_key');
    assert.ok(secret, 'google_secret_manager_secret.pii_hash_key');
    assert.equal(secret.body.secret_id, '${var.name_prefix}-pii-hash-key');
    assert.equal(resourcesOfType(m, 'google_secret_manager_secret_version').length, 0);
    const mounting = FUNCTIONS.filter((f) => {
      const mounts = many(at(fnOf(f).body, 'service_config.secret_environment_variables'));
      if (mounts.length === 0) return false;
      assert.deepEqual(mounts, [
        {
          key: 'SMELTER_PII_HASH_KEY',
          project_id: '${var.project}',
          secret: '${google_secret_manager_secret.pii_hash_key.secret_id}',
          version: 'latest',
        },
      ]);
      return true;
    }).map((f) => f.name);
    assert.deepEqual(mounting.sort(), [...HASHES_PII].sort());
    const accessors = resourcesOfType(m, 'google_secret_manager_secret_iam_member').filter(
      (g) => g.body.secret_id === '${google_secret_manager_secret.pii_hash_key.id}',
    );
    const runtimeSa = (f: FunctionSpec): string =>
      saMember(target(at(fnOf(f).body, 'service_config.service_account_email'), 'email'));
    assert.deepEqual(
      accessors.map((g) => `${String(g.body.member)} ${String(g.body.role)}`).sort(),
      FUNCTIONS.filter((f) => HASHES_PII.includes(f.name))
        .map((f) => `${runtimeSa(f)} roles/secretmanager.secretAccessor`)
        .sort(),
    );
    // The key cannot be passed in clear through extra_env.
    const extra = m.variables.get('extra_env');
    assert.match(String(one(extra?.validation).condition), /SMELTER_PII_HASH_KEY/);
    assert.ok(!('SMELTER_PII_HASH_KEY' in (m.locals.smelter_env as Record<string, string>)));
  });

  it('dataset access: analysts and PII readers read Silver and Gold only; only the functions write', function () {
    for (const name of ['analysts', 'pii_readers']) {
      const v = m.variables.get(name);
      assert.ok(v, `variable ${name}`);
      assert.deepEqual(v.default, []);
      const re = new RegExp(/regex\("([^"]+)"/.exec(String(one(v.validation).condition))?.[1] ?? '^$');
      for (const ok of ['user:ana@example.com', 'group:bi@example.com']) assert.ok(re.test(ok), ok);
      for (const bad of ['allUsers', 'allAuthenticatedUsers', ''])
        assert.ok(!re.test(bad), `${name}: ${bad} is refused`);
    }
    const datasetGrants = resourcesOfType(m, 'google_bigquery_dataset_iam_member');
    const readers = datasetGrants.filter((g) => g.body.member === '${each.value}');
    assert.deepEqual(
      readers.map((g) => target(g.body.dataset_id, 'dataset_id').split('.')[1]).sort(),
      READER_DATASETS,
    );
    for (const g of readers) {
      assert.equal(g.body.role, 'roles/bigquery.dataViewer');
      assert.equal(g.body.for_each, '${local.warehouse_readers}');
    }
    assert.equal(m.locals.warehouse_readers, '${setunion(var.analysts, var.pii_readers)}');
    const functionAccounts = new Set(
      FUNCTIONS.map((f) =>
        saMember(target(at(fnOf(f).body, 'service_config.service_account_email'), 'email')),
      ),
    );
    const writers = datasetGrants.filter((g) => WRITE_ROLES.test(String(g.body.role)));
    assert.ok(writers.length > 0);
    for (const g of writers)
      assert.ok(functionAccounts.has(String(g.body.member)), `${address(g)}: only function accounts write`);
    // Table-level grants would bypass the dataset's list; there are none.
    assert.equal(resourcesOfType(m, 'google_bigquery_table_iam_member').length, 0);
  });

  it('the backend is a partially configured GCS backend (bucket and prefix come from deploy.sh)', async function () {
    const { parse } = await import('@cdktf/hcl2json');
    const fs = await import('node:fs');
    const doc = (await parse(
      'versions.tf',
      fs.readFileSync(path.join(DEPLOY, 'versions.tf'), 'utf8'),
    )) as Body;
    const tf = one(doc.terraform);
    assert.deepEqual(Object.keys(one(tf.backend)), ['gcs']);
    assert.equal(one(one(tf.required_providers).google).source, 'hashicorp/google');
  });
});
