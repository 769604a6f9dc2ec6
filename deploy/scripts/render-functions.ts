/**
 * Renders deploy/generated/functions.tf.json from the trigger manifest: per function a runtime
 * service account with resource-scoped roles, the gen2 function, its Eventarc storage trigger or
 * Terraform-owned push subscriptions (with dead-letter policy), and invoker IAM.
 */
import { OPTIONS } from '../../shared/config';
import {
  BIGQUERY_ACCESS,
  FUNCTIONS,
  bucketAddress,
  bucketRoles,
  datasetAddress,
  functionAddress,
  functionEnvironment,
  functionKey,
  hasEventTrigger,
  invokerSaAddress,
  isHttp,
  pubsubTriggers,
  ref,
  runtimeSaAddress,
  snake,
  storageTriggers,
  subscriptionKey,
  topicAddress,
  type FunctionSpec,
} from './model';

type Json = Record<string, unknown>;

/** Address → `resource.<type>.<name>` slot. */
function put(resources: Record<string, Record<string, Json>>, address: string, body: Json): void {
  const [type, name] = address.split('.') as [string, string];
  const byType = (resources[type] ??= {});
  if (byType[name]) throw new Error(`Duplicate Terraform resource ${address}`);
  byType[name] = body;
}

const GCS_AGENT_BINDING = 'google_project_iam_member.gcs_service_agent_pubsub_publisher';
const DEAD_LETTER_AGENT_BINDING = 'google_pubsub_topic_iam_member.dead_letter_pubsub_agent';

function validate(f: FunctionSpec): void {
  if (!/^[a-z][a-z0-9-]{1,40}$/.test(f.name)) throw new Error(`${f.name}: function names are kebab-case`);
  if (storageTriggers(f).length > 1)
    throw new Error(
      `${f.name}: a gen2 function carries one Eventarc trigger; split it or add google_eventarc_trigger support`,
    );
  for (const t of pubsubTriggers(f)) {
    if (t.topic === 'deadLetter')
      throw new Error(`${f.name}: a function on the dead-letter topic would dead-letter into itself`);
    if (t.maxDeliveryAttempts < 5 || t.maxDeliveryAttempts > 100)
      throw new Error(
        `${f.name}: Pub/Sub accepts max_delivery_attempts in [5, 100], got ${t.maxDeliveryAttempts}`,
      );
    if (t.ackDeadlineSeconds < 10 || t.ackDeadlineSeconds > 600)
      throw new Error(`${f.name}: Pub/Sub accepts ack deadlines in [10, 600] s, got ${t.ackDeadlineSeconds}`);
  }
  if (isHttp(f) && f.signature !== 'http')
    throw new Error(`${f.name}: an http trigger needs the http signature`);
}

export function renderFunctions(functions: readonly FunctionSpec[] = FUNCTIONS): Json {
  const resources: Record<string, Record<string, Json>> = {};
  const defaults: Record<string, Json> = {};
  const urls: Record<string, string> = {};
  const accounts: Record<string, string> = {};

  for (const f of functions) {
    validate(f);
    const k = functionKey(f);
    const fn = functionAddress(f);
    const runtimeSa = runtimeSaAddress(f);
    const runtimeMember = `serviceAccount:${ref(runtimeSa, 'email')}`;
    const service = ref(fn, 'service_config[0].service');
    defaults[f.name] = {
      memory: f.memory,
      timeout_seconds: f.timeoutSeconds,
      max_instances: f.maxInstances,
      concurrency: f.concurrency,
    };
    urls[f.name] = ref(fn, 'service_config[0].uri');
    accounts[f.name] = ref(runtimeSa, 'email');

    // --- identity: one service account per function, roles scoped to the resources it touches
    put(resources, runtimeSa, {
      account_id: `\${var.name_prefix}-${f.name}`,
      display_name: `Smelter ${f.entryPoint} (runtime)`,
      description: `Runs ${f.entryPoint}. Roles derive from shared/manifest.ts reads/writes/publishes/bigquery.`,
    });
    const grants: string[] = [];
    for (const { bucket, role } of bucketRoles(f)) {
      // The creator half of a create-only pair gets its own address; the other grant keeps the plain one.
      const suffix = role === 'roles/storage.objectCreator' ? '_create' : '';
      const address = `google_storage_bucket_iam_member.${k}_${snake(bucket)}${suffix}`;
      put(resources, address, { bucket: ref(bucketAddress(bucket), 'name'), role, member: runtimeMember });
      grants.push(address);
    }
    for (const topic of f.publishes) {
      const address = `google_pubsub_topic_iam_member.${k}_publish_${snake(topic)}`;
      put(resources, address, {
        topic: ref(topicAddress(topic), 'id'),
        role: 'roles/pubsub.publisher',
        member: runtimeMember,
      });
      grants.push(address);
    }
    const bq = BIGQUERY_ACCESS[f.bigquery];
    for (const { layer, role } of bq.datasets) {
      const address = `google_bigquery_dataset_iam_member.${k}_${layer}`;
      put(resources, address, {
        dataset_id: ref(datasetAddress(layer), 'dataset_id'),
        role,
        member: runtimeMember,
      });
      grants.push(address);
    }
    if (bq.jobUser) {
      // Documented exception: BigQuery jobs are project resources, so jobUser has no narrower scope.
      const address = `google_project_iam_member.${k}_bigquery_job_user`;
      put(resources, address, {
        project: '${var.project}',
        role: 'roles/bigquery.jobUser',
        member: runtimeMember,
      });
      grants.push(address);
    }

    // --- the function
    const storage = storageTriggers(f)[0];
    const invokerSa = invokerSaAddress(f);
    const invokerMember = `serviceAccount:${ref(invokerSa, 'email')}`;
    const eventReceiver = `google_project_iam_member.${k}_eventarc_event_receiver`;
    const settings = `local.functions["${f.name}"]`;
    put(resources, fn, {
      name: `\${var.name_prefix}-${f.name}`,
      location: '${var.region}',
      description: f.description,
      labels: { 'smelter-function': f.name },
      build_config: {
        runtime: '${var.runtime}',
        entry_point: f.entryPoint,
        service_account: '${local.build_service_account}',
        docker_repository: ref('google_artifact_registry_repository.functions', 'id'),
        source: {
          storage_source: {
            bucket: ref('google_storage_bucket.source', 'name'),
            object: ref('google_storage_bucket_object.source', 'name'),
          },
        },
      },
      service_config: {
        available_memory: `\${${settings}.memory}`,
        available_cpu: `\${${settings}.cpu}`,
        timeout_seconds: `\${${settings}.timeout_seconds}`,
        max_instance_count: `\${${settings}.max_instances}`,
        min_instance_count: `\${${settings}.min_instances}`,
        max_instance_request_concurrency: `\${${settings}.concurrency}`,
        service_account_email: ref(runtimeSa, 'email'),
        // Event-driven functions only take traffic from Eventarc / Pub/Sub push in this project.
        ingress_settings: isHttp(f) ? '${var.http_ingress}' : 'ALLOW_INTERNAL_ONLY',
        all_traffic_on_latest_revision: true,
        environment_variables: '${merge(var.extra_env, local.smelter_env)}',
      },
      ...(storage
        ? {
            event_trigger: {
              trigger_region: '${var.region}',
              event_type: storage.eventType,
              event_filters: { attribute: 'bucket', value: ref(bucketAddress(storage.bucket), 'name') },
              retry_policy: 'RETRY_POLICY_RETRY',
              service_account_email: ref(invokerSa, 'email'),
            },
          }
        : {}),
      depends_on: [...grants, ...(storage ? [GCS_AGENT_BINDING, eventReceiver] : [])],
    });

    // --- who may invoke it
    if (hasEventTrigger(f)) {
      put(resources, invokerSa, {
        account_id: `\${var.name_prefix}-${f.name}-inv`,
        display_name: `Smelter ${f.entryPoint} (invoker)`,
        description: `Identity Eventarc and Pub/Sub push use to call ${f.entryPoint}; run.invoker on it only.`,
      });
      put(resources, `google_cloud_run_v2_service_iam_member.${k}_invoker`, {
        project: '${var.project}',
        location: '${var.region}',
        name: service,
        role: 'roles/run.invoker',
        member: invokerMember,
      });
      // Pub/Sub mints the push OIDC tokens; only needed on projects created before 2021-04-08, scoped to this account.
      put(resources, `google_service_account_iam_member.${k}_invoker_token_creator`, {
        service_account_id: ref(invokerSa, 'name'),
        role: 'roles/iam.serviceAccountTokenCreator',
        member: '${local.pubsub_service_agent}',
      });
    }
    if (storage) {
      // Documented exception: Eventarc checks eventarc.events.receiveEvent on the project.
      put(resources, eventReceiver, {
        project: '${var.project}',
        role: 'roles/eventarc.eventReceiver',
        member: invokerMember,
      });
    }
    if (isHttp(f)) {
      put(resources, `google_cloud_run_v2_service_iam_member.${k}_http_invoker`, {
        for_each: `\${toset(lookup(var.http_invokers, "${f.name}", []))}`,
        project: '${var.project}',
        location: '${var.region}',
        name: service,
        role: 'roles/run.invoker',
        member: '${each.value}',
      });
    }

    // --- Terraform-owned push subscriptions: Eventarc-created ones cannot carry a dead-letter policy.
    for (const t of pubsubTriggers(f)) {
      const sk = subscriptionKey(f, t.topic);
      const sub = `google_pubsub_subscription.${sk}`;
      const topicName = ref(topicAddress(t.topic), 'name');
      put(resources, sub, {
        name: `\${var.name_prefix}-${f.name}-${snake(t.topic).replace(/_/g, '-')}`,
        topic: ref(topicAddress(t.topic), 'id'),
        ack_deadline_seconds: t.ackDeadlineSeconds,
        message_retention_duration: '${var.subscription_retention}',
        expiration_policy: { ttl: '' },
        push_config: {
          // functions-framework turns a push to /projects/P/topics/T into a messagePublished CloudEvent.
          push_endpoint: `${urls[f.name]}/projects/\${var.project}/topics/${topicName}`,
          oidc_token: { service_account_email: ref(invokerSa, 'email'), audience: urls[f.name] },
        },
        retry_policy: {
          minimum_backoff: '${var.retry_minimum_backoff}',
          maximum_backoff: '${var.retry_maximum_backoff}',
        },
        dead_letter_policy: {
          dead_letter_topic: ref(topicAddress('deadLetter'), 'id'),
          max_delivery_attempts: t.maxDeliveryAttempts,
        },
        labels: { 'smelter-function': f.name },
        depends_on: [DEAD_LETTER_AGENT_BINDING, `google_cloud_run_v2_service_iam_member.${k}_invoker`],
      });
      // Dead-lettering: the Pub/Sub service agent must be able to ack on the source subscription.
      put(resources, `google_pubsub_subscription_iam_member.${sk}_dead_letter_agent`, {
        subscription: ref(sub, 'name'),
        role: 'roles/pubsub.subscriber',
        member: '${local.pubsub_service_agent}',
      });
    }
  }

  return {
    '//': 'GENERATED by deploy/scripts/generate.ts from shared/manifest.ts and shared/config.ts. Do not edit.',
    locals: {
      function_defaults: defaults,
      smelter_env: functionEnvironment(),
      config_defaults: { bq_location: OPTIONS.bigqueryLocation.default },
    },
    resource: resources,
    output: {
      function_urls: { description: 'HTTPS endpoint of each function (all require IAM).', value: urls },
      function_service_accounts: {
        description: 'Runtime service account of each function.',
        value: accounts,
      },
    },
  };
}
