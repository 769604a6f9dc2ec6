/**
 * `smelter status` reads like the dashboard's overview (on a home holding the bundled samples, no stack
 * running: the warehouse is opened read-only in-process), and `--json` carries the full detail.
 */
import assert from 'node:assert/strict';
import { statusCommand } from '../../../cli/commands/status';
import { seededHome, type SeededHome } from '../../support/dashboard';

async function status(h: SeededHome, flags: Record<string, boolean> = {}): Promise<string[]> {
  const saved = { ...process.env };
  Object.assign(process.env, {
    SMELTER_HOME: h.home,
    SMELTER_CONTRACTS_DIR: h.cfg.contractsDir,
    SMELTER_MODELS_DIR: h.cfg.modelsDir,
    SMELTER_LOG_FORMAT: 'silent',
  });
  const lines: string[] = [];
  try {
    assert.equal(
      await statusCommand.run({ args: [], flags, out: (l) => lines.push(l), err: () => undefined }),
      0,
    );
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
  return lines;
}

describe('smelter status', function () {
  this.timeout(60_000);
  let h: SeededHome;
  before(async () => {
    h = await seededHome();
  });
  after(() => h?.remove());

  it('summarises like the overview: datasets, events, dead letters, quarantine, parked, audits; problems flagged', async () => {
    const text = (await status(h)).join('\n');
    for (const section of [
      'Files per dataset',
      'Warehouse loads per dataset',
      'Events per type',
      'Dead letters by reason and type',
      'Quarantine by reason',
      'Parked deliveries',
      'Audits',
      'Model runs',
    ])
      assert.match(text, new RegExp(`^${section}`, 'm'), section);
    assert.match(
      text,
      /^ {2}⚠ {2}rainfall +1 +1,203 +1,200 +3 +0 /m,
      'rows in / written / rejected per dataset',
    );
    assert.match(text, /^\s+orders\s+\d+\s+2024-05-\d\d \d\d:\d\d:\d\d UTC/m, 'events with their newest');
    assert.match(text, /^Quarantine by reason {2}⚠ quarantined \(2\)$/m);
    assert.match(text, /^ {2}No dead letters/m, 'an empty section says why');
    assert.match(text, /^ {2}\d+ passing, 0 failing$/m);
    assert.match(
      text,
      /^Needs attention: files per dataset: rows rejected \(1\); quarantine by reason: quarantined \(2\)\.$/m,
    );
    assert.ok(text.split('\n').length < 60, 'a summary, not a dump');
  });

  it('--json carries the full detail, the overview included', async () => {
    const report = JSON.parse((await status(h, { json: true })).join('\n')) as {
      buckets: Record<string, { objects: number }>;
      overview: Record<string, unknown[]>;
      warehouse: { layers: { gold: unknown[] } };
    };
    assert.ok((report.buckets.bronze?.objects ?? 0) >= 10);
    assert.equal(report.overview['overview.quarantine']?.length, 2);
    assert.ok(report.warehouse.layers.gold.length >= 20);
  });
});
