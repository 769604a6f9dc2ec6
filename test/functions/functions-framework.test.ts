/**
 * A function served alone by the stock functions-framework CLI, configured only by environment
 * variables, as `npx functions-framework --target=rawToBronze --signature-type=cloudevent` does. It loads
 * package.json `main` (dist/functions/index.js), so this needs a build (`npm test` builds first).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FsObjectStore } from '../../shared/adapters/storage/fs';
import { bronzeNames } from '../../shared/ingest/bronze';
import { packageRoot } from '../../shared/paths';
import { childEnv } from '../support/cli';

const REPO = packageRoot;
const FF_MAIN = path.join(
  REPO,
  'node_modules',
  '@google-cloud',
  'functions-framework',
  'build',
  'src',
  'main.js',
);
const CSV =
  'station_id,region,date,rain_mm\nA1,North,2024-01-01,3\nA1,North,2024-01-02,\nB2,South,2024-01-01,1.5\n';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** A function served by the stock functions-framework CLI; `output()` is what it printed so far. */
interface Served {
  url: string;
  output(): string;
  stop(): Promise<void>;
}

async function serve(
  target: string,
  signature: 'cloudevent' | 'http',
  cwd: string,
  home: string,
): Promise<Served> {
  if (!fs.existsSync(path.join(REPO, 'dist', 'functions', 'index.js')))
    execFileSync(
      process.execPath,
      [path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
      { cwd: REPO, stdio: 'inherit' },
    );
  const port = await freePort();
  // The node process itself (not an npx wrapper), so killing it stops the server.
  const proc = spawn(
    process.execPath,
    [FF_MAIN, `--target=${target}`, `--signature-type=${signature}`, `--port=${port}`, `--source=${REPO}`],
    {
      cwd,
      env: childEnv({ SMELTER_HOME: home, SMELTER_BACKEND: 'local', SMELTER_LOG_FORMAT: 'json' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  proc.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  proc.stderr?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await exited;
  };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not serving after 20 s:\n${out}`)), 20_000);
    proc.stdout?.on('data', () => {
      if (out.includes('Serving function')) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`functions-framework exited (${code}):\n${out}`));
    });
  }).catch(async (e: unknown) => {
    await stop();
    throw e;
  });
  return { url: `http://127.0.0.1:${port}`, output: () => out, stop };
}

describe('stock functions-framework CLI serving rawToBronze (env-only configuration)', function () {
  this.timeout(120_000); // a first build, when dist/ is missing, takes a while
  let tmp: string;
  let home: string;
  let fn: Served | undefined;
  let url: string;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-ff-'));
    home = path.join(tmp, 'home');
    fn = await serve('rawToBronze', 'cloudevent', tmp, home);
    url = fn.url;
  });

  after(async () => {
    await fn?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  async function putRaw(name: string): Promise<{ generation: string; size: number }> {
    const store = new FsObjectStore(home);
    await store.ensureBucket('raw');
    return store.write('raw', name, CSV, { contentType: 'text/csv' });
  }
  const manifestFile = (name: string, generation: string): string =>
    path.join(
      home,
      'buckets',
      'bronze',
      ...bronzeNames({ bucket: 'raw', name, generation }).manifest.split('/'),
    );

  it('a binary CloudEvent for a raw object → 204 and Bronze output', async () => {
    const name = 'rainfall/ff-binary.csv';
    const m = await putRaw(name);
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'ce-specversion': '1.0',
        'ce-id': 'ff-1',
        'ce-source': '//storage.googleapis.com/projects/_/buckets/raw',
        'ce-type': 'google.cloud.storage.object.v1.finalized',
        'ce-subject': `objects/${name}`,
        'ce-time': new Date().toISOString(),
      },
      body: JSON.stringify({
        bucket: 'raw',
        name,
        generation: m.generation,
        size: String(m.size),
        contentType: 'text/csv',
        timeCreated: new Date().toISOString(),
      }),
    });
    assert.equal(res.status, 204, await res.text());
    const manifest = JSON.parse(fs.readFileSync(manifestFile(name, m.generation), 'utf8')) as {
      rows: number;
      output: { name: string };
    };
    assert.equal(manifest.rows, 3);
    assert.ok(fs.statSync(path.join(home, 'buckets', 'bronze', ...manifest.output.name.split('/'))).size > 0);
    // Inside functions, logs are JSON lines in the shape Cloud Logging parses.
    const line = (fn?.output() ?? '')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.message === 'converted to bronze' && l.object === name);
    assert.ok(line, `no JSON log line for the conversion in:\n${fn?.output()}`);
    assert.equal(line.severity, 'INFO');
    assert.equal(line.rows, 3);
  });

  it('a structured CloudEvent with numeric generation and size → 204 and Bronze output', async () => {
    const name = 'rainfall/ff-structured.csv';
    const m = await putRaw(name);
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify({
        specversion: '1.0',
        id: 'ff-2',
        source: '//storage.googleapis.com/projects/_/buckets/raw',
        type: 'google.cloud.storage.object.v1.finalized',
        subject: `objects/${name}`,
        time: new Date().toISOString(),
        datacontenttype: 'application/json',
        data: {
          bucket: 'raw',
          name,
          generation: Number(m.generation),
          size: m.size,
          contentType: 'text/csv',
        },
      }),
    });
    assert.equal(res.status, 204, await res.text());
    assert.ok(fs.existsSync(manifestFile(name, m.generation)));
  });
});

describe('stock functions-framework CLI serving ingestHttp: the body is streamed, never parsed', function () {
  this.timeout(120_000);
  let tmp: string;
  let fn: Served | undefined;
  let url: string;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-ff-http-'));
    fn = await serve('ingestHttp', 'http', tmp, path.join(tmp, 'home'));
    url = fn.url;
  });

  after(async () => {
    await fn?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('a body its JSON parser would refuse is stored; errors are JSON', async () => {
    const ok = await fetch(`${url}/?dataset=rainfall&filename=a.csv`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: CSV,
    });
    assert.equal(ok.status, 202, await ok.clone().text());
    const { object } = (await ok.json()) as { object: string };
    assert.equal(
      fs.readFileSync(path.join(tmp, 'home', 'buckets', 'raw', ...object.split('/')), 'utf8'),
      CSV,
    );
    const bad = await fetch(`${url}/?dataset=rainfall`, {
      method: 'POST',
      headers: { 'content-type': 'text/csv', 'content-encoding': 'gzip' },
      body: 'not gzip',
    });
    assert.equal(bad.status, 400);
    assert.match(String(bad.headers.get('content-type')), /application\/json/);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'BAD_ENCODING');
  });
});

describe('the entry module loads an entry point only when it is first called', () => {
  it('registers all six without loading any function module; a call loads only its own', () => {
    const probe = `
      const before = new Set(Object.keys(require.cache));
      require(${JSON.stringify(path.join(REPO, 'dist', 'functions', 'index.js'))});
      const { getFunction } = require('@google-cloud/functions-framework/testing');
      const names = ['rawToBronze', 'ingestHttp', 'routeEvent', 'loadWarehouse', 'pullSource', 'dashboard'];
      const registered = names.filter((n) => typeof getFunction(n) === 'function');
      const fnModules = () => Object.keys(require.cache).filter((f) => !before.has(f))
        .map((f) => /[\\\\/]dist[\\\\/]functions[\\\\/]([^\\\\/]+)[\\\\/]index\\.js$/.exec(f)?.[1]).filter(Boolean);
      const atStart = fnModules();
      // An event without data: the handler answers (or throws) after its module has loaded.
      Promise.resolve().then(() => getFunction('rawToBronze')({ id: '1', source: 's', type: 't', specversion: '1.0' }))
        .catch(() => undefined)
        .then(() => console.log(JSON.stringify({ registered, atStart, afterCall: fnModules() })));
    `;
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-lazy-'));
    let out: string;
    try {
      out = execFileSync(process.execPath, ['-e', probe], {
        cwd: REPO,
        env: childEnv({ SMELTER_HOME: home, SMELTER_LOG_LEVEL: 'CRITICAL' }),
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
    const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as Record<string, string[]>;
    assert.equal(r.registered?.length, 6, out);
    assert.deepEqual(r.atStart, []);
    assert.deepEqual(r.afterCall, ['raw-to-bronze']);
  });
});
