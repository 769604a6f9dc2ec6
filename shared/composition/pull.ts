/**
 * Runs one pull of a source from the configuration — what `pullSource` and `smelter pull` share:
 * the contract (with SMELTER_SOURCE_<NAME>_URL applied), the secret (SMELTER_SOURCE_<NAME>_TOKEN, or
 * Secret Manager on GCP), the keep-alive HTTP client, and the run record `smelter status` shows.
 */
import type { Config } from '../config';
import { errorMessage, isSmelterError } from '../errors';
import type { Logger } from '../log';
import { loadSourceContract, sourceEnv, withEnvOverrides, type SourceContract } from '../pull/contract';
import { systemClock, type Clock, type HttpClient } from '../pull/ports';
import { runPull, type PullRequest, type PullSummary } from '../pull/run';
import { writeRunRecord, type RunRecord } from '../pull/state';
import type { ObjectStore } from '../storage/object-store';
import { NodeHttpClient } from '../adapters/http/node-http';
import { accessSecret } from '../adapters/pull/secret-manager';

let sharedHttp: NodeHttpClient | undefined;

export interface SourcePullOptions extends PullRequest {
  source: string;
  http?: HttpClient;
  clock?: Clock;
  env?: NodeJS.ProcessEnv;
  gzipLevel?: number;
  onProgress?: (p: { endpoint: string; unit: string; pages: number; records: number }) => void;
}

export function sourceContract(
  cfg: Config,
  source: string,
  env: NodeJS.ProcessEnv = process.env,
): SourceContract {
  return withEnvOverrides(loadSourceContract(cfg.contractsDir, source), env);
}

export async function sourceSecret(
  cfg: Config,
  c: SourceContract,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  const local = env[sourceEnv(c.source).token];
  if (local) return local;
  if (c.auth.type === 'none' || cfg.backend !== 'gcp') return undefined;
  return accessSecret(`${cfg.sourceSecretPrefix}${c.source.replace(/_/g, '-')}`, { project: cfg.project });
}

export async function pullFromConfig(
  rt: { cfg: Config; log: Logger; store: ObjectStore },
  o: SourcePullOptions,
): Promise<PullSummary> {
  const { cfg, store } = rt;
  const startedAt = new Date().toISOString();
  const record: RunRecord = {
    source: o.source,
    run: o.run,
    status: 'running',
    startedAt,
    pages: 0,
    records: 0,
    objects: 0,
  };
  try {
    const c = sourceContract(cfg, o.source, o.env);
    const secret = await sourceSecret(cfg, c, o.env);
    const summary = await runPull(
      c,
      { run: o.run, ...(o.from ? { from: o.from } : {}), ...(o.to ? { to: o.to } : {}) },
      {
        store,
        http: o.http ?? (sharedHttp ??= new NodeHttpClient()),
        rawBucket: cfg.rawBucket,
        stateBucket: cfg.bronzeBucket,
        log: rt.log,
        clock: o.clock ?? systemClock,
        ...(secret ? { secret } : {}),
        ...(o.gzipLevel !== undefined ? { gzipLevel: o.gzipLevel } : {}),
        ...(o.onProgress ? { onProgress: o.onProgress } : {}),
      },
    );
    await writeRunRecord(store, cfg.bronzeBucket, {
      ...record,
      status: 'ok',
      finishedAt: new Date().toISOString(),
      pages: summary.pages,
      records: summary.records,
      objects: summary.objects,
    });
    return summary;
  } catch (err) {
    const d = isSmelterError(err) ? err.details : {};
    await writeRunRecord(store, cfg.bronzeBucket, {
      ...record,
      status: 'failed',
      finishedAt: new Date().toISOString(),
      error: {
        code: isSmelterError(err) ? err.code : 'INTERNAL',
        message: errorMessage(err),
        ...(typeof d.endpoint === 'string' ? { endpoint: d.endpoint } : {}),
        ...(typeof d.status === 'number' ? { status: d.status } : {}),
        ...(typeof d.url === 'string' ? { url: d.url } : {}),
      },
    }).catch((e: unknown) => rt.log.warn('could not record the failed pull run', { err: e }));
    throw err;
  }
}
