/**
 * The `smelter` CLI as a user runs it: `node bin/smelter.js …` in a child process (the compiled CLI when
 * dist/ is built, the TypeScript sources through tsx otherwise), configured only by the environment.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OPTIONS } from '../../shared/config';
import { packageRoot } from '../../shared/paths';
import { runSmelter } from '../support/cli';

const REPO = packageRoot;

const smelter = runSmelter;

const HEADER = 'station_id,station_name,region,lat,lon,date,rain_mm,measured_at';
const GOOD_ROWS = [
  'ST0001,Station 1,North,50.1,4.2,2024-01-01,3.5,2024-01-01T06:00:00Z',
  'ST0001,Station 1,North,50.1,4.2,2024-01-02,,2024-01-02T06:00:00Z',
  'ST0002,Station 2,South,48.9,2.3,2024-01-01,0,2024-01-01T06:00:00Z',
  'ST0002,Station 2,South,48.9,2.3,2024-01-02,12.25,2024-01-02T06:00:00Z',
];
const BAD_ROW = 'ST0003,Station 3,East,47.0,5.0,2024-01-01,lots,2024-01-01T06:00:00Z';

describe('smelter CLI (bin/smelter.js in a child process)', function () {
  this.timeout(30_000);
  let tmp: string;
  let env: Record<string, string>;

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-cli-'));
    const contracts = path.join(tmp, 'contracts');
    fs.cpSync(path.join(REPO, 'contracts'), contracts, { recursive: true });
    env = { SMELTER_HOME: path.join(tmp, 'home'), SMELTER_CONTRACTS_DIR: contracts };
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('`drop FILE --dataset rainfall --wait --json` without a running stack prints one JSON object', async () => {
    const file = path.join(tmp, 'obs.csv');
    fs.writeFileSync(file, [HEADER, ...GOOD_ROWS, BAD_ROW].join('\n') + '\n');
    const r = await smelter(['drop', file, '--dataset', 'rainfall', '--wait', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, `stdout must hold only the result:\n${r.stdout}`);
    const out = JSON.parse(lines[0]!) as {
      source: { bucket: string; name: string; generation: string };
      output: { bucket: string; name: string };
      rows: number;
      rejected: number;
      quarantine: { bucket: string; name: string } | null;
      durationMs: number;
      warehouse: { status: string; rows: number } | null;
    };
    assert.deepEqual(Object.keys(out).sort(), [
      'durationMs',
      'output',
      'quarantine',
      'rejected',
      'rows',
      'source',
      'warehouse',
    ]);
    assert.equal(out.source.bucket, 'raw');
    assert.equal(out.source.name, 'rainfall/obs.csv');
    assert.match(out.source.generation, /^\d+$/);
    assert.equal(out.output.bucket, 'bronze');
    assert.match(
      out.output.name,
      new RegExp(
        `^rainfall/ingest_date=\\d{4}-\\d{2}-\\d{2}/obs-[0-9a-f]{8}-g${out.source.generation}\\.parquet$`,
      ),
    );
    assert.equal(out.rows, GOOD_ROWS.length);
    assert.equal(out.rejected, 1);
    assert.deepEqual(out.warehouse, { status: 'loaded', rows: GOOD_ROWS.length });
    assert.equal(out.quarantine?.bucket, 'quarantine');
    assert.match(out.quarantine?.name ?? '', /\.rejects\.ndjson$/);
    assert.equal(typeof out.durationMs, 'number');
    assert.ok(out.durationMs >= 0);
    // The files are where the JSON says; the logs went to stderr.
    const buckets = path.join(env.SMELTER_HOME!, 'buckets');
    assert.ok(fs.statSync(path.join(buckets, 'bronze', ...out.output.name.split('/'))).size > 0);
    assert.ok(fs.existsSync(path.join(buckets, 'quarantine', ...out.quarantine!.name.split('/'))));
    assert.match(r.stderr, /converted to bronze/);
  });

  it('`status --json` reports the conversion', async () => {
    const r = await smelter(['status', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as {
      home: string;
      stack: unknown;
      buckets: Record<string, { objects: number }>;
      bronze: {
        datasets: Record<string, { files: number; rows: number; rejected: number }>;
        recent: { source: string; output: string; rows: number; rejected: number }[];
      };
      quarantine: { rejectFiles: number; failedFiles: unknown[] };
      parked: unknown[];
    };
    assert.equal(s.home, env.SMELTER_HOME);
    assert.equal(s.stack, null, 'drop --wait stopped the stack it started');
    assert.equal(s.buckets.raw?.objects, 1);
    assert.deepEqual(
      { ...s.bronze.datasets.rainfall, last: undefined },
      { files: 1, rows: GOOD_ROWS.length, rejected: 1, last: undefined },
    );
    assert.equal(s.bronze.recent[0]?.source, 'gs://raw/rainfall/obs.csv');
    assert.match(s.bronze.recent[0]?.output ?? '', /^gs:\/\/bronze\/rainfall\/.*\.parquet$/);
    assert.equal(s.quarantine.rejectFiles, 1);
    assert.deepEqual(s.quarantine.failedFiles, []);
    assert.deepEqual(s.parked, []);
  });

  it('`drop --wait` without a running stack on the gcp backend fails at once, before copying anything', async () => {
    const file = path.join(tmp, 'gcp.csv');
    fs.writeFileSync(file, [HEADER, ...GOOD_ROWS].join('\n') + '\n');
    const r = await smelter(['drop', file, '--dataset', 'rainfall', '--wait', '--json'], {
      ...env,
      SMELTER_BACKEND: 'gcp',
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--wait without a running stack needs the local stack: SMELTER_BACKEND=local/);
  });

  it('`drop --infer` on a new dataset writes a contract into SMELTER_CONTRACTS_DIR and converts', async () => {
    const file = path.join(tmp, 'sensors.csv');
    fs.writeFileSync(
      file,
      'sensor_id,reading_at,temp_c,ok\ns-1,2024-03-01 10:00:00,21.5,true\ns-2,2024-03-01 10:05:00,19.0,false\ns-3,2024-03-01 10:10:00,,true\n',
    );
    const contract = path.join(env.SMELTER_CONTRACTS_DIR!, 'datasets', 'sensors.json');
    const r = await smelter(['drop', file, '--dataset', 'sensors', '--infer', '--wait', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const c = JSON.parse(fs.readFileSync(contract, 'utf8')) as {
      dataset: string;
      columns: { name: string; type: unknown }[];
    };
    assert.equal(c.dataset, 'sensors');
    assert.deepEqual(
      c.columns.map((col) => col.name),
      ['sensor_id', 'reading_at', 'temp_c', 'ok'],
    );
    assert.deepEqual(Object.fromEntries(c.columns.map((col) => [col.name, col.type])), {
      sensor_id: 'string',
      reading_at: 'timestamp',
      temp_c: 'float64',
      ok: 'bool',
    });
    assert.ok(!fs.existsSync(path.join(REPO, 'contracts', 'datasets', 'sensors.json')));
    const out = JSON.parse(r.stdout) as { rows: number; rejected: number; output: { name: string } };
    assert.equal(out.rows, 3);
    assert.equal(out.rejected, 0);
    assert.match(out.output.name, /^sensors\/ingest_date=/);

    // Without --infer, an unknown dataset is refused with a hint.
    const u = await smelter(['drop', file, '--dataset', 'unknown_ds', '--json'], env);
    assert.equal(u.code, 1);
    assert.match(u.stderr, /--infer/);
    assert.equal(u.stdout, '');
  });

  it('an unknown command exits 2 with the help on stderr', async () => {
    const r = await smelter(['frobnicate'], env);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /unknown command "frobnicate"/);
    assert.match(r.stderr, /Usage: smelter <command>/);
  });

  it('`config --markdown` prints the options table', async () => {
    const r = await smelter(['config', '--markdown'], env);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], '| Variable | Default | Meaning |');
    assert.equal(lines[1], '| --- | --- | --- |');
    const envs = Object.values(OPTIONS).map((o) => o.env);
    assert.equal(lines.length, envs.length + 2);
    for (const v of envs)
      assert.ok(
        lines.some((l) => l.startsWith(`| \`${v}\` |`)),
        v,
      );
  });

  it('an invalid option value exits 1 naming the variable', async () => {
    const r = await smelter(['status'], { ...env, SMELTER_BACKEND: 'azure' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /CONFIG_INVALID/);
    assert.match(r.stderr, /SMELTER_BACKEND/);
  });
});
