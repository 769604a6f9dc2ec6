/**
 * `smelter pull` end to end on the local backend: a pull killed mid-run (SIGKILL of a real CLI
 * process) and pulled again lands every record in Silver exactly once; a second pull of the same data
 * adds nothing; a 401 fails clearly with nothing written; the token appears nowhere.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pullCommand } from '../../../cli/commands/pull';
import { packageRoot } from '../../../shared/paths';
import { readRunRecord } from '../../../shared/pull/state';
import { testHome, type TestHome } from '../../support/home';
import { apiServer, json, readParts, type ApiServer } from '../../support/pull';

const N = 250;
const TOKEN = 'cli-Secret-Token-99';
const rows = Array.from({ length: N }, (_, i) => ({
  id: i + 1,
  name: `item ${i + 1}`,
  score: (i % 7) / 2,
  password: 'hunter2',
}));

function writeFixtures(dir: string, apiUrl: string): void {
  const w = (rel: string, body: unknown): void => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), typeof body === 'string' ? body : JSON.stringify(body, null, 2));
  };
  w('contracts/datasets/demo_items.json', {
    dataset: 'demo_items',
    columns: [
      { name: 'id', type: 'int64', required: true },
      { name: 'name', type: 'string' },
      { name: 'score', type: 'float64' },
    ],
    primaryKey: ['id'],
  });
  w('contracts/sources/demo.json', {
    source: 'demo',
    baseUrl: apiUrl,
    auth: { type: 'bearer' },
    limits: { recordsPerPart: 30, requestsPerSecond: 1000 },
    http: { maxAttempts: 2, retryBaseMs: 5 },
    endpoints: [
      {
        path: '/items',
        dataset: 'demo_items',
        records: 'items',
        pagination: {
          type: 'offset',
          offsetParam: 'skip',
          limitParam: 'limit',
          limit: 10,
          totalPath: 'total',
        },
        omit: ['password'],
      },
    ],
  });
  w(
    'models/demo/silver/demo_items.sql',
    `-- model: silver.demo_items
-- kind: merge
-- unique_key: id
-- version: _ingested_at, _source_generation
-- inputs: bronze.demo_items
WITH batch AS (SELECT * FROM @ref(bronze.demo_items) WHERE @batch(bronze.demo_items)),
ranked AS (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY id ORDER BY _ingested_at DESC, _source_generation DESC, name DESC) AS _rn
  FROM batch
)
SELECT @star_except(_rn) FROM ranked WHERE _rn = 1
`,
  );
}

describe('smelter pull', function () {
  this.timeout(120_000);
  let h: TestHome;
  let api: ApiServer;
  let dir: string;
  let hangAt: number | undefined;
  let onHang: (() => void) | undefined;
  let deny = false;

  before(async () => {
    api = await apiServer((req, res, u) => {
      if (deny || req.headers.authorization !== `Bearer ${TOKEN}`)
        return json(res, { message: 'Invalid token' }, 401);
      const skip = Number(u.searchParams.get('skip'));
      const limit = Number(u.searchParams.get('limit'));
      if (hangAt !== undefined && skip === hangAt) {
        onHang?.();
        return; // never answers: the client is killed while waiting
      }
      json(res, { items: rows.slice(skip, skip + limit), total: N, skip, limit });
    });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-pull-cli-'));
    writeFixtures(dir, api.url);
    h = await testHome({
      SMELTER_CONTRACTS_DIR: path.join(dir, 'contracts'),
      SMELTER_MODELS_DIR: path.join(dir, 'models'),
      SMELTER_SOURCE_DEMO_TOKEN: TOKEN,
    });
  });
  after(async () => {
    await api.close();
    h.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
    for (const k of ['SMELTER_CONTRACTS_DIR', 'SMELTER_MODELS_DIR', 'SMELTER_SOURCE_DEMO_TOKEN'])
      delete process.env[k];
  });

  async function pull(flags: Record<string, string | boolean>): Promise<{ code: number; out: string[] }> {
    const out: string[] = [];
    const code = await pullCommand.run({
      args: ['demo'],
      flags,
      out: (l) => out.push(l),
      err: (l) => out.push(l),
    });
    return { code, out };
  }

  it('a pull killed mid-run, then pulled again: every record in Silver exactly once; again: nothing added', async () => {
    // 1. A real CLI process, SIGKILLed while it waits for page 13, once the four parts of pages 1–12 are
    // committed (page 13 is requested while page 12 is still being written).
    hangAt = 120;
    const hung = new Promise<void>((r) => (onHang = r));
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(packageRoot, 'cli', 'main.ts'), 'pull', 'demo'],
      {
        env: { ...process.env, SMELTER_LOG_FORMAT: 'silent' },
        stdio: 'ignore',
      },
    );
    const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, sig) => r(sig)));
    await hung;
    for (let i = 0; i < 200; i++) {
      if ((await readParts(h.store, h.cfg.rawBucket, 'demo_items/pulled/demo/')).names.length >= 4) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    hangAt = undefined;
    const killed = await readParts(h.store, h.cfg.rawBucket, 'demo_items/pulled/demo/');
    assert.equal(killed.names.length, 4);
    assert.equal(killed.records.length, 120);

    // 2. Pull again and wait for Silver and Gold: the killed run's parts load too (they are in raw).
    const second = await pull({ wait: true, json: true });
    assert.equal(second.code, 0, second.out.join('\n'));
    const s = JSON.parse(second.out[0] as string) as {
      records: number;
      datasets: Record<string, { rows: number; silverRows: number }>;
    };
    assert.equal(s.records, N);
    assert.equal(s.datasets.demo_items?.rows, N);
    assert.equal(s.datasets.demo_items?.silverRows, N);

    // 3. The same data again: Silver unchanged.
    const third = await pull({ wait: true, json: true });
    assert.equal(third.code, 0, third.out.join('\n'));
    assert.equal(
      (JSON.parse(third.out[0] as string) as { datasets: Record<string, { silverRows: number }> }).datasets
        .demo_items?.silverRows,
      N,
    );

    // Every record pulled, none kept its password; the token is in no object.
    const all = await readParts(h.store, h.cfg.rawBucket, 'demo_items/pulled/demo/');
    assert.equal(all.records.length, 120 + 2 * N);
    assert.ok(all.records.every((r) => !('password' in r)));
    const files = fs.readdirSync(h.home, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    for (const f of files)
      assert.ok(!fs.readFileSync(path.join(f.parentPath, f.name), 'latin1').includes(TOKEN), f.name);
  });

  it('401: a clear error, recorded for status, nothing written', async () => {
    deny = true;
    try {
      const before = (await readParts(h.store, h.cfg.rawBucket, '')).names.length;
      await assert.rejects(pull({ json: true }), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'SOURCE_HTTP_ERROR');
        assert.match(
          e.message,
          /source "demo" endpoint "demo_items": GET http:\/\/127\.0\.0\.1:\d+\/items\?skip=0&limit=10 answered HTTP 401/,
        );
        assert.ok(!e.message.includes(TOKEN));
        return true;
      });
      assert.equal((await readParts(h.store, h.cfg.rawBucket, '')).names.length, before);
      assert.equal((await readRunRecord(h.store, h.cfg.bronzeBucket, 'demo'))?.error?.status, 401);
    } finally {
      deny = false;
    }
  });
});
