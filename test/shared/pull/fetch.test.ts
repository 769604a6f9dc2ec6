/**
 * Robust HTTP against local servers: retries (429 + Retry-After, 503 then success, network errors),
 * timeouts, bad bodies, limits, redirects — each classified transient or permanent with an error that
 * names the source, endpoint and status and never contains the secret.
 */
import assert from 'node:assert/strict';
import type http from 'node:http';
import { NodeHttpClient } from '../../../shared/adapters/http/node-http';
import { isSmelterError } from '../../../shared/errors';
import { SourceHttp, retryAfterMs } from '../../../shared/pull/fetch';
import { apiServer, captureLog, contract, fakeClock, json, type ApiServer } from '../../support/pull';

const SECRET = 's3cr3t-T0ken/+=';

describe('pull: robust HTTP', () => {
  const client = new NodeHttpClient();
  let api: ApiServer | undefined;
  afterEach(async () => {
    await api?.close();
    api = undefined;
  });
  after(() => client.close());

  async function setup(
    handler: (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => void,
    over: Record<string, unknown> = {},
  ) {
    api = await apiServer(handler);
    const clock = fakeClock();
    const cap = captureLog();
    const c = contract({ baseUrl: api.url, auth: { type: 'token' }, ...over });
    const src = new SourceHttp({
      contract: c,
      http: client,
      secret: SECRET,
      clock,
      log: cap.log,
      random: () => 0.5,
    });
    return { src, clock, cap, url: new URL('/items?x=1', api.url) };
  }

  async function failure(p: Promise<unknown>) {
    try {
      await p;
    } catch (err) {
      assert.ok(isSmelterError(err), String(err));
      assert.ok(!err.message.includes(SECRET), err.message);
      assert.ok(!JSON.stringify(err.toJSON()).includes(SECRET));
      return err;
    }
    assert.fail('expected a failure');
  }

  it('sends the Token header and parses the JSON body', async () => {
    const { src } = await setup((req, res) =>
      json(res, [{ id: 1, auth: req.headers.authorization === `Token ${SECRET}` }]),
    );
    const page = await src.getJson(new URL('/items', api!.url), 'items');
    assert.deepEqual(page.body, [{ id: 1, auth: true }]);
  });

  it('429 with Retry-After: waits as told, then succeeds', async () => {
    let n = 0;
    const { src, clock, cap } = await setup((_req, res) =>
      n++ < 2 ? json(res, { error: 'slow down' }, 429, { 'retry-after': '1' }) : json(res, [1]),
    );
    const page = await src.getJson(new URL('/items', api!.url), 'items');
    assert.deepEqual(page.body, [1]);
    assert.deepEqual(
      clock.sleeps.filter((s) => s >= 1000),
      [1000, 1000],
    );
    assert.equal(src.retries, 2);
    assert.ok(!cap.lines.join('\n').includes(SECRET));
  });

  it('a Retry-After longer than the policy allows is a transient failure (the platform retries the run)', async () => {
    const { src } = await setup((_req, res) => json(res, {}, 429, { 'retry-after': '3600' }));
    const err = await failure(src.getJson(new URL('/items', api!.url), 'items'));
    assert.equal(err.code, 'SOURCE_UNAVAILABLE');
    assert.equal(err.kind, 'transient');
  });

  it('503 then success, with exponential backoff', async () => {
    let n = 0;
    const { src, clock } = await setup((_req, res) => (n++ < 3 ? json(res, {}, 503) : json(res, [2])));
    assert.deepEqual((await src.getJson(new URL('/items', api!.url), 'items')).body, [2]);
    // base 10 ms doubling, jitter pinned at 0.5 → 75% of the cap
    assert.deepEqual(
      clock.sleeps.filter((s) => s >= 1),
      [8, 15, 30],
    );
  });

  it('5xx on every attempt: transient SOURCE_UNAVAILABLE naming source, endpoint and status', async () => {
    const { src } = await setup((_req, res) => json(res, {}, 502), {
      http: { maxAttempts: 3, retryBaseMs: 1 },
    });
    const err = await failure(src.getJson(new URL('/items', api!.url), 'items'));
    assert.equal(err.kind, 'transient');
    assert.match(err.message, /source "demo" endpoint "items".*HTTP 502 after 3 attempts/);
  });

  for (const status of [401, 403, 404]) {
    it(`${status} is permanent at once, with source, endpoint and status`, async () => {
      const { src } = await setup((_req, res) => json(res, { detail: `bad token ${SECRET}` }, status));
      const err = await failure(src.getJson(new URL('/items', api!.url), 'items'));
      assert.equal(err.code, 'SOURCE_HTTP_ERROR');
      assert.equal(err.kind, 'permanent');
      assert.equal(err.details.status, status);
      assert.match(
        err.message,
        new RegExp(
          `source "demo" endpoint "items": GET http://127\\.0\\.0\\.1:\\d+/items answered HTTP ${status}`,
        ),
      );
      assert.equal(api!.requests.length, 1);
    });
  }

  it('a timeout is retried, then reported', async () => {
    const { src } = await setup(() => undefined /* never answers */, {
      http: { timeoutMs: 100, maxAttempts: 2, retryBaseMs: 1 },
    });
    const err = await failure(src.getJson(new URL('/items', api!.url), 'items'));
    assert.equal(err.kind, 'transient');
    assert.match(err.message, /no complete response within 100 ms after 2 attempts/);
  });

  it('a connection refused is a retried network error', async () => {
    const { src } = await setup((_req, res) => json(res, []), { http: { maxAttempts: 2, retryBaseMs: 1 } });
    const dead = new URL('/items', 'http://127.0.0.1:9');
    const err = await failure(src.getJson(dead, 'items'));
    assert.match(err.message, /ECONNREFUSED after 2 attempts/);
  });

  it('an HTML page instead of JSON is permanent', async () => {
    const { src } = await setup((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><h1>Maintenance</h1>');
    });
    const err = await failure(src.getJson(new URL('/items', api!.url), 'items'));
    assert.equal(err.code, 'SOURCE_BAD_RESPONSE');
    assert.match(err.message, /HTML page instead of JSON/);
  });

  it('malformed JSON is permanent', async () => {
    const { src } = await setup((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"users": [1, 2,');
    });
    const err = await failure(src.getJson(new URL('/items', api!.url), 'items'));
    assert.match(err.message, /malformed JSON/);
    // Asked for the records as NDJSON, a page that is not JSON is refused the same way.
    const asLines = await failure(src.getJson(new URL('/items', api!.url), 'items', 'GET', 'users'));
    assert.match(asLines.message, /malformed JSON/);
  });

  it('a body cut short of its Content-Length is retried as truncated', async () => {
    let n = 0;
    const { src } = await setup((_req, res) => {
      if (n++ === 0) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
        res.write('[1,2,3');
        setTimeout(() => res.destroy(), 20);
      } else json(res, [1, 2, 3]);
    });
    assert.deepEqual((await src.getJson(new URL('/items', api!.url), 'items')).body, [1, 2, 3]);
    assert.equal(src.retries, 1);
  });

  it('a response over limits.bytesPerResponse is stopped (declared or streamed)', async () => {
    const big = JSON.stringify(Array.from({ length: 5000 }, (_, i) => ({ i })));
    for (const chunked of [false, true]) {
      const { src } = await setup(
        (_req, res) => {
          res.writeHead(
            200,
            chunked
              ? { 'content-type': 'application/json' }
              : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(big) },
          );
          res.end(big);
        },
        { limits: { bytesPerResponse: 10_000, requestsPerSecond: 1000 } },
      );
      const err = await failure(src.getJson(new URL('/items', api!.url), 'items'));
      assert.equal(err.code, 'SOURCE_LIMIT');
      assert.match(err.message, /over the limit of 10000 bytes.*limits\.bytesPerResponse/);
      await api!.close();
      api = undefined;
    }
  });

  it('a redirect loop is stopped; redirects within limits are followed', async () => {
    const { src } = await setup((req, res) => {
      if (req.url?.startsWith('/a')) res.writeHead(302, { location: '/b' }).end();
      else if (req.url?.startsWith('/b')) res.writeHead(302, { location: '/a' }).end();
      else if (req.url?.startsWith('/moved')) res.writeHead(301, { location: '/items' }).end();
      else json(res, ['ok']);
    });
    const err = await failure(src.getJson(new URL('/a', api!.url), 'items'));
    assert.equal(err.code, 'SOURCE_BAD_RESPONSE');
    assert.match(err.message, /redirect loop/);
    assert.deepEqual((await src.getJson(new URL('/moved', api!.url), 'items')).body, ['ok']);
  });

  it('credentials are not sent along a redirect to another origin', async () => {
    const other = await apiServer((req, res) => json(res, [{ auth: req.headers.authorization ?? null }]));
    try {
      const { src } = await setup((_req, res) => res.writeHead(307, { location: `${other.url}/x` }).end());
      const page = await src.getJson(new URL('/items', api!.url), 'items');
      assert.deepEqual(page.body, [{ auth: null }]);
    } finally {
      await other.close();
    }
  });

  it('an API-key query parameter is masked in every error and log line', async () => {
    let n = 0;
    const { src, cap } = await setup((_req, res) => (n++ === 0 ? json(res, {}, 500) : json(res, {}, 401)), {
      auth: { type: 'query', name: 'api_key' },
    });
    const err = await failure(src.getJson(new URL('/items', api!.url), 'items'));
    assert.match(err.message, /api_key=\*\*\*/);
    assert.ok(api!.requests.every((r) => r.url.includes(`api_key=${encodeURIComponent(SECRET)}`)));
    assert.ok(cap.lines.length > 0);
    assert.ok(
      !cap.lines.join('\n').includes(SECRET) && !cap.lines.join('\n').includes(encodeURIComponent(SECRET)),
    );
  });

  it('paces requests to limits.requestsPerSecond', async () => {
    const { src, clock } = await setup((_req, res) => json(res, []), { limits: { requestsPerSecond: 4 } });
    for (let i = 0; i < 3; i++) await src.getJson(new URL('/items', api!.url), 'items');
    assert.deepEqual(clock.sleeps, [250, 250]);
  });

  it('parses Retry-After dates and seconds', () => {
    const now = Date.parse('2026-11-10T12:00:00Z');
    assert.equal(retryAfterMs('7', now), 7000);
    assert.equal(retryAfterMs('Tue, 10 Nov 2026 12:00:30 GMT', now), 30_000);
    assert.equal(retryAfterMs('soon', now), undefined);
  });
});
