/**
 * The deployable `dashboard` HTTP function, served by functions-framework as the platform runs it:
 * the page shell, the libraries and the JSON API over the warehouse of its configuration (here the
 * local samples; BigQuery's Gold dataset once deployed). Read-only: anything but GET/HEAD is refused.
 */
import assert from 'node:assert/strict';
import '../../functions/index';
import { resetConfig } from '../../shared/config';
import { closeRuntime } from '../../shared/composition/runtime';
import { serve } from '../support/http';
import { seededHome, type SeededHome } from '../support/dashboard';

describe('dashboard function (functions-framework)', function () {
  this.timeout(60_000);
  let h: SeededHome;
  let srv: { url: string; close(): Promise<void> };
  const saved = { ...process.env };

  before(async () => {
    h = await seededHome();
    Object.assign(process.env, {
      SMELTER_HOME: h.home,
      SMELTER_BACKEND: 'local',
      SMELTER_LOG_FORMAT: 'silent',
    });
    resetConfig();
    await closeRuntime();
    srv = await serve('dashboard');
  });
  after(async () => {
    await srv?.close();
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    resetConfig();
    await closeRuntime();
    h?.remove();
  });

  it('serves the pages, the charting libraries and the chart API', async () => {
    const page = await fetch(`${srv.url}/network?region=Nord`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<script src="\/vendor\/vega-embed\.js"><\/script>/);
    for (const lib of ['vega', 'vega-lite', 'vega-embed']) {
      const r = await fetch(`${srv.url}/vendor/${lib}.js`);
      assert.equal(r.status, 200, lib);
      assert.ok((await r.arrayBuffer()).byteLength > 50_000, `${lib} is the real bundle`);
    }
    const a = (await (await fetch(`${srv.url}/api/charts/rainfall.region_monthly?region=North`)).json()) as {
      rows: { region: string }[];
    };
    assert.ok(a.rows.length > 0 && a.rows.every((r) => r.region === 'North'));
    assert.equal((await fetch(`${srv.url}/api/charts/rainfall.region_monthly?q=1`)).status, 400);
    assert.equal((await fetch(`${srv.url}/api/catalogue`, { method: 'POST', body: '{}' })).status, 405);
  });
});
