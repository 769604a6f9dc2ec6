/**
 * pullSource over HTTP (functions-framework) with a Pub/Sub messagePublished CloudEvent: a message
 * pulls the source into raw parts; a redelivery writes nothing new; a 401 is acknowledged and recorded
 * for `smelter status` with nothing written; an unavailable source throws for a retry; the token never
 * reaches a log line or an object.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import '../../functions/index';
import { loadConfig } from '../../shared/config';
import { readRunRecord } from '../../shared/pull/state';
import { useRuntime } from '../../shared/composition/runtime';
import { serve } from '../support/http';
import { testHome, type TestHome } from '../support/home';
import { apiServer, captureLog, json, readParts, type ApiServer } from '../support/pull';

const TOKEN = 'tok-Very-Secret-42';

function listFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

describe('pullSource over HTTP (functions-framework)', function () {
  let h: TestHome;
  let srv: { url: string; close(): Promise<void> };
  let api: ApiServer;
  let mode: 'ok' | '401' | '503' = 'ok';
  let lines: string[];

  beforeEach(async () => {
    mode = 'ok';
    api = await apiServer((req, res, u) => {
      if (mode === '401' || req.headers.authorization !== `Token ${TOKEN}`)
        return json(res, { detail: 'Invalid token.' }, 401);
      if (mode === '503') return json(res, { detail: 'down' }, 503);
      const day = u.searchParams.get('date_from');
      json(res, [
        { measurement_id: `${day}-1`, day },
        { measurement_id: `${day}-2`, day },
      ]);
    });
    const contracts = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-contracts-'));
    fs.mkdirSync(path.join(contracts, 'sources'));
    fs.writeFileSync(
      path.join(contracts, 'sources', 'gov.json'),
      JSON.stringify({
        source: 'gov',
        baseUrl: 'https://example.invalid',
        auth: { type: 'token' },
        http: { maxAttempts: 2, retryBaseMs: 5, retryMaxMs: 20 },
        endpoints: [
          {
            name: 'speed',
            path: '/api/v1/query/speed',
            dataset: 'network_measurements',
            window: { start: '2026-11-01', toInclusive: true },
          },
        ],
      }),
    );
    h = await testHome({
      SMELTER_CONTRACTS_DIR: contracts,
      SMELTER_SOURCE_GOV_URL: api.url,
      SMELTER_SOURCE_GOV_TOKEN: TOKEN,
    });
    const cap = captureLog();
    lines = cap.lines;
    useRuntime({ config: loadConfig(), log: cap.log, store: h.store });
    srv = await serve('pullSource');
  });
  afterEach(async () => {
    await srv.close();
    await api.close();
    await h.cleanup();
    for (const k of ['SMELTER_CONTRACTS_DIR', 'SMELTER_SOURCE_GOV_URL', 'SMELTER_SOURCE_GOV_TOKEN'])
      delete process.env[k];
  });

  const push = (body: unknown, messageId = 'm-1', time?: string): Promise<Response> =>
    fetch(srv.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'ce-specversion': '1.0',
        ...(time ? { 'ce-time': time } : {}),
        'ce-id': messageId,
        'ce-source': '//pubsub.googleapis.com/projects/p/topics/pull',
        'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
      },
      body: JSON.stringify({
        message: {
          data: Buffer.from(JSON.stringify(body)).toString('base64'),
          messageId,
          publishTime: '2026-11-05T06:30:00Z',
        },
        subscription: 'projects/p/subscriptions/pull-source',
      }),
    });

  it('pulls the window into parts, records the run; a redelivery adds nothing', async () => {
    const res = await push({ source: 'gov', from: '2026-11-01', to: '2026-11-03' });
    assert.equal(res.status, 204);
    const got = await readParts(h.store, h.cfg.rawBucket, 'network_measurements/pulled/gov/');
    assert.equal(got.records.length, 6);
    assert.deepEqual(
      got.names.map((n) => n.split('/')[3]),
      ['2026-11-01_2026-11-02', '2026-11-02_2026-11-03', '2026-11-03_2026-11-04'],
    );
    const rec = await readRunRecord(h.store, h.cfg.bronzeBucket, 'gov');
    assert.equal(rec?.status, 'ok');
    assert.equal(rec?.records, 6);
    assert.equal((await push({ source: 'gov', from: '2026-11-01', to: '2026-11-03' })).status, 204);
    assert.equal(
      (await readParts(h.store, h.cfg.rawBucket, 'network_measurements/pulled/gov/')).names.length,
      3,
    );
    const all = [...lines, ...listFiles(h.home).map((f) => fs.readFileSync(f, 'latin1'))].join('\n');
    assert.ok(!all.includes(TOKEN), 'the token is in no log line and no object');
  });

  it('401: acknowledged, recorded with source, endpoint and status, nothing written', async () => {
    mode = '401';
    const res = await push({ source: 'gov', from: '2026-11-01', to: '2026-11-01' });
    assert.equal(res.status, 204);
    const rec = await readRunRecord(h.store, h.cfg.bronzeBucket, 'gov');
    assert.equal(rec?.status, 'failed');
    assert.equal(rec?.error?.code, 'SOURCE_HTTP_ERROR');
    assert.equal(rec?.error?.status, 401);
    assert.equal(rec?.error?.endpoint, 'speed');
    assert.match(
      rec?.error?.message ?? '',
      /source "gov" endpoint "speed": GET http:\/\/127\.0\.0\.1:\d+\/api\/v1\/query\/speed\?date_from=2026-11-01&date_to=2026-11-01 answered HTTP 401/,
    );
    assert.deepEqual((await readParts(h.store, h.cfg.rawBucket, '')).names, []);
    assert.ok(!lines.join('\n').includes(TOKEN));
  });

  it('a source that stays unavailable makes the function fail (Pub/Sub redelivers)', async () => {
    mode = '503';
    const res = await push({ source: 'gov', from: '2026-11-01', to: '2026-11-01' });
    assert.equal(res.status, 500);
    assert.equal((await readRunRecord(h.store, h.cfg.bronzeBucket, 'gov'))?.status, 'failed');
  });

  it('a source still unavailable past SMELTER_MAX_EVENT_AGE_MS is recorded and acknowledged (delivery policy)', async () => {
    mode = '503';
    const res = await push(
      { source: 'gov', from: '2026-11-01', to: '2026-11-01' },
      'm-old',
      '2020-01-01T00:00:00Z',
    );
    assert.equal(res.status, 204);
    const run = await readRunRecord(h.store, h.cfg.bronzeBucket, 'gov');
    assert.equal(run?.status, 'failed');
    assert.match(String(run?.error?.message), /HTTP 503/);
    assert.match(lines.join('\n'), /older than SMELTER_MAX_EVENT_AGE_MS/);
  });

  it('an unusable message is acknowledged', async () => {
    assert.equal((await push({ nope: true })).status, 204);
    assert.equal((await push({ source: 'missing' })).status, 204);
    assert.match(lines.join('\n'), /No source contract for \\"missing\\"/);
  });
});
