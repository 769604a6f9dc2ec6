/**
 * What the CLI loads: the local backend must not pay for Google Cloud client libraries it does not use
 * (`@google-cloud/pubsub` alone is ~0.3 s of start-up, before any work). Each run records, at exit,
 * which `@google-cloud/*` packages ended up in the child's require cache.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { COMMANDS } from '../../cli/commands';
import { packageRoot } from '../../shared/paths';
import { runSmelter } from '../support/cli';

const CLOUD_SDKS = ['@google-cloud/pubsub', '@google-cloud/storage', '@google-cloud/bigquery'];

// Preloaded with --require: at exit, writes the @google-cloud/* packages the process loaded.
const RECORDER = `
const fs = require('node:fs');
process.on('exit', () => {
  const pkgs = new Set();
  for (const f of Object.keys(require.cache)) {
    const m = /node_modules[\\\\/](@google-cloud[\\\\/][^\\\\/]+)/.exec(f);
    if (m) pkgs.add(m[1].replace('\\\\', '/'));
  }
  fs.writeFileSync(process.env.LOADED_PACKAGES_OUT, JSON.stringify([...pkgs].sort()));
});
`;

describe('CLI start-up: Google Cloud SDKs are loaded only where used', function () {
  this.timeout(30_000);
  let tmp: string;
  let env: Record<string, string>;
  let runs = 0;

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-startup-'));
    fs.writeFileSync(path.join(tmp, 'recorder.cjs'), RECORDER);
    env = {
      SMELTER_HOME: path.join(tmp, 'home'),
      SMELTER_CONTRACTS_DIR: path.join(packageRoot, 'contracts'),
      SMELTER_PUBSUB_EMULATOR: 'off',
      NODE_OPTIONS: `--require=${path.join(tmp, 'recorder.cjs')}`,
    };
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  async function loaded(args: string[]): Promise<string[]> {
    const out = path.join(tmp, `loaded-${++runs}.json`);
    const r = await runSmelter(args, { ...env, LOADED_PACKAGES_OUT: out });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(fs.readFileSync(out, 'utf8')) as string[];
  }

  it('`drop --wait` on the local backend (stack started in-process, embedded Pub/Sub) loads none', async () => {
    const file = path.join(tmp, 'obs.csv');
    fs.writeFileSync(
      file,
      'station_id,station_name,region,lat,lon,date,rain_mm,measured_at\n' +
        'ST0001,Station 1,North,50.1,4.2,2024-01-01,3.5,2024-01-01T06:00:00Z\n',
    );
    const pkgs = await loaded(['drop', file, '--dataset', 'rainfall', '--wait', '--json']);
    // The recorder sees what was loaded: the functions are served through functions-framework.
    assert.ok(pkgs.includes('@google-cloud/functions-framework'), JSON.stringify(pkgs));
    for (const sdk of CLOUD_SDKS)
      assert.ok(!pkgs.includes(sdk), `${sdk} was loaded: ${JSON.stringify(pkgs)}`);
  });

  it('`status` and `--help` load none', async () => {
    for (const args of [['status', '--json'], ['--help']]) {
      const pkgs = await loaded(args);
      for (const sdk of CLOUD_SDKS)
        assert.ok(!pkgs.includes(sdk), `${args.join(' ')}: ${sdk} was loaded: ${JSON.stringify(pkgs)}`);
    }
  });

  it('each command is listed under its own name (the CLI loads only the module of the command it runs)', () => {
    for (const [name, load] of Object.entries(COMMANDS)) assert.equal(load().name, name);
  });
});
