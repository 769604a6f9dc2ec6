/**
 * Reads a source's secret from Secret Manager over its REST API with the function's own identity (an
 * access token from the metadata server) — no client library, and no secret in Terraform state: the
 * operator adds the version (`gcloud secrets versions add`). Only pullSource's service account may
 * access these secrets.
 */
import { permanent, transient } from '../../errors';

export interface SecretManagerOptions {
  project: string;
  /** Overridable for tests. */
  metadataUrl?: string;
  apiUrl?: string;
}

export async function accessSecret(secretId: string, o: SecretManagerOptions): Promise<string> {
  const md = o.metadataUrl ?? 'http://metadata.google.internal';
  const api = o.apiUrl ?? 'https://secretmanager.googleapis.com';
  let token: string;
  try {
    const r = await fetch(`${md}/computeMetadata/v1/instance/service-accounts/default/token`, {
      headers: { 'Metadata-Flavor': 'Google' },
      signal: AbortSignal.timeout(10_000),
    });
    if (!r.ok) throw new Error(`metadata server answered ${r.status}`);
    token = ((await r.json()) as { access_token: string }).access_token;
  } catch (err) {
    throw transient(
      'SOURCE_UNAVAILABLE',
      `Cannot get an access token to read secret ${secretId}: ${(err as Error).message}`,
    );
  }
  const url = `${api}/v1/projects/${encodeURIComponent(o.project)}/secrets/${encodeURIComponent(secretId)}/versions/latest:access`;
  let r: Response;
  try {
    r = await fetch(url, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw transient(
      'SOURCE_UNAVAILABLE',
      `Secret Manager unreachable reading ${secretId}: ${(err as Error).message}`,
    );
  }
  if (r.status === 404 || r.status === 403 || r.status === 400)
    throw permanent(
      'CONFIG_INVALID',
      `Secret ${secretId} has no accessible version (HTTP ${r.status}): add one with \`gcloud secrets versions add ${secretId} --data-file=-\``,
      { details: { secret: secretId, status: r.status } },
    );
  if (!r.ok)
    throw transient('SOURCE_UNAVAILABLE', `Secret Manager answered HTTP ${r.status} reading ${secretId}`);
  const body = (await r.json()) as { payload?: { data?: string } };
  const value = Buffer.from(body.payload?.data ?? '', 'base64')
    .toString('utf8')
    .trim();
  if (!value)
    throw permanent('CONFIG_INVALID', `Secret ${secretId} is empty`, { details: { secret: secretId } });
  return value;
}
