/**
 * Fault campaign, a real kill: `smelter drop --wait` (the local stack in one process: raw → Bronze →
 * warehouse) is killed with SIGKILL while it writes the Bronze Parquet. The next stack on the same home
 * redelivers the interrupted finalize event (the local Eventarc keeps what was not settled), and the
 * file ends up exactly once in Bronze, in the Bronze table and in Silver; nothing partial is left.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getLocalWarehouse } from '../../shared/adapters/warehouse/duckdb-local';
import { packageRoot } from '../../shared/paths';
import { childEnv, runSmelter, SMELTER_BIN } from '../support/cli';
import { sleep, waitFor } from '../support/local';

const STATIONS = 40;
const DAYS = 1500;

/** Rainfall observations: STATIONS × DAYS rows, one per station and day, all valid. */
function writeCsv(file: string): number {
  const out = fs.openSync(file, 'w');
  fs.writeSync(out, 'station_id,station_name,region,lat,lon,date,rain_mm,measured_at\n');
  const start = Date.UTC(2020, 0, 1);
  for (let s = 0; s < STATIONS; s++) {
    const lines: string[] = [];
    for (let d = 0; d < DAYS; d++) {
      const day = new Date(start + d * 86_400_000).toISOString().slice(0, 10);
      lines.push(
        `ST${String(s).padStart(4, '0')},Station ${s},North,50.1,4.2,${day},${(d * 7 + s) % 23},${day}T06:00:00Z`,
      );
    }
    fs.writeSync(out, lines.join('\n') + '\n');
  }
  fs.closeSync(out);
  return STATIONS * DAYS;
}

function partFiles(home: string): string[] {
  try {
    return fs.readdirSync(path.join(home, 'tmp', 'objects')).filter((f) => f.endsWith('.part'));
  } catch {
    return [];
  }
}

describe('fault campaign: smelter drop killed with SIGKILL mid-conversion, then redelivered', function () {
  this.timeout(90_000);
  let home: string;
  before(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-sigkill-'));
  });
  after(() => fs.rmSync(home, { recursive: true, force: true }));

  it('every row exactly once in Bronze and Silver after the redelivery; no partial object', async () => {
    const big = path.join(home, 'big.csv');
    const rows = writeCsv(big);
    const env = {
      SMELTER_HOME: home,
      SMELTER_LOG_FORMAT: 'silent',
      SMELTER_DUCKDB_THREADS: '1',
      SMELTER_CONTRACTS_DIR: path.join(packageRoot, 'contracts'),
      SMELTER_MODELS_DIR: path.join(packageRoot, 'models'),
    };
    const child = spawn(process.execPath, [SMELTER_BIN, 'drop', big, '--dataset', 'rainfall', '--wait'], {
      cwd: packageRoot,
      env: childEnv(env),
      stdio: 'ignore',
    });
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, sig) => r(sig)));
    // Mid-conversion: the raw object is in its bucket and the Parquet upload's temp file is growing.
    const rawObject = path.join(home, 'buckets', 'raw', 'rainfall', 'big.csv');
    await waitFor(
      'the Parquet upload to start',
      () => fs.existsSync(rawObject) && partFiles(home).length > 0,
      30_000,
    );
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    assert.ok(partFiles(home).length > 0, 'killed while writing an object');
    const bronze = path.join(home, 'buckets', 'bronze', 'rainfall');
    const committed = (): string[] =>
      fs.existsSync(bronze)
        ? fs
            .readdirSync(bronze, { recursive: true })
            .map(String)
            .filter((f) => f.endsWith('.manifest.json'))
        : [];
    assert.deepEqual(committed(), [], 'killed before the commit');

    // The next stack on this home redelivers the interrupted event (here: another drop --wait).
    const small = path.join(home, 'small.csv');
    fs.writeFileSync(
      small,
      'station_id,station_name,region,lat,lon,date,rain_mm,measured_at\nZZ01,Z,South,1,2,2024-01-01,3,2024-01-01T06:00:00Z\n',
    );
    const again = await runSmelter(['drop', small, '--dataset', 'rainfall', '--wait', '--json'], env);
    assert.equal(again.code, 0, again.stderr);
    await waitFor('the redelivered file to be committed', () => committed().length === 2, 30_000);

    const db = await getLocalWarehouse(home, { threads: 1 });
    try {
      const q = async (sql: string): Promise<number> => Number((await db.query<{ n: string }>(sql))[0]?.n);
      // Loaded once (the second stack may still be loading it when drop returned: wait for the ledger).
      await waitFor(
        'both files loaded',
        async () => (await q(`SELECT count(*) AS n FROM ops.load_ledger WHERE status = 'done'`)) === 2,
        30_000,
      );
      assert.equal(await q(`SELECT count(*) AS n FROM bronze.rainfall WHERE station_id <> 'ZZ01'`), rows);
      assert.equal(
        await q(
          `SELECT count(*) AS n FROM (SELECT DISTINCT station_id, date FROM bronze.rainfall WHERE station_id <> 'ZZ01')`,
        ),
        rows,
      );
      assert.equal(await q(`SELECT count(*) AS n FROM silver.rainfall WHERE station_id <> 'ZZ01'`), rows);
      assert.equal(await q(`SELECT count(*) AS n FROM silver.rainfall WHERE station_id = 'ZZ01'`), 1);
    } finally {
      await db.close();
    }
    // One Parquet per file, nothing partial in any bucket, and the dead process's temp file swept.
    const parquet = fs
      .readdirSync(bronze, { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('.parquet'));
    assert.equal(parquet.length, 2, parquet.join(', '));
    await sleep(0);
    assert.deepEqual(partFiles(home), [], 'the killed process left no temp file behind');
  });
});
