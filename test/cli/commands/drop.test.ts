/**
 * `smelter drop FILE --wait` without a running stack runs the chain in its own process: it reports the
 * warehouse load of the file too, and a load that failed is not a success (exit 4, the reason shown).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runSmelter } from '../../support/cli';

const HEADER = 'station_id,station_name,region,lat,lon,date,rain_mm,measured_at\n';

describe('smelter drop --wait: the warehouse outcome', function () {
  this.timeout(60_000);
  let home: string;
  const env = (): Record<string, string> => ({
    SMELTER_HOME: home,
    SMELTER_PUBSUB_EMULATOR: 'off',
    SMELTER_LOG_LEVEL: 'CRITICAL',
  });
  const drop = async (
    csv: string,
  ): Promise<{ code: number; out: Record<string, unknown>; stderr: string }> => {
    const file = path.join(home, 'obs.csv');
    fs.writeFileSync(file, HEADER + csv);
    const r = await runSmelter(['drop', file, '--dataset', 'rainfall', '--wait', '--json'], env());
    return {
      code: r.code ?? -1,
      out: JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>,
      stderr: r.stderr,
    };
  };

  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-drop-'));
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('says how many rows the warehouse loaded', async () => {
    const r = await drop(
      'ST01,A,North,1,2,2024-01-01,3.5,2024-01-01T06:00:00Z\nST02,B,South,1,2,2024-01-01,0,2024-01-01T06:00:00Z\n',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out.rows, 2);
    assert.deepEqual(r.out.warehouse, { status: 'loaded', rows: 2 });
  });

  it('exits 4 with the reason when the load failed (an audit), though Bronze was written', async () => {
    // 2,500 mm in a day: a valid Bronze row that the rain_plausible audit beside Silver refuses.
    const r = await drop('ST01,A,North,1,2,2024-01-01,2500,2024-01-01T06:00:00Z\n');
    assert.equal(r.code, 4, r.stderr);
    assert.equal(r.out.rows, 1);
    const wh = r.out.warehouse as { status: string; error: string };
    assert.equal(wh.status, 'failed');
    assert.match(wh.error, /Audit rain_plausible failed for model silver\.rainfall/);
  });
});
