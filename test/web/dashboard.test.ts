/**
 * The dashboard in headless Chromium (Debian's `chromium`, driven by puppeteer-core; no browser is ever
 * downloaded) over a warehouse holding the bundled samples: every page loads without a console error,
 * every chart draws SVG marks, the table view holds exactly the chart's data, filters change the data
 * and live in the URL, empty answers are explained. Screenshots of every page go to
 * test/.screenshots/ (git-ignored) for a human to look at.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { PAGES } from '../../shared/dashboard/pages';
import { packageRoot } from '../../shared/paths';
import { seededHome, serveHome, type SeededHome, type ServedHome } from '../support/dashboard';

export const CHROMIUM = process.env.SMELTER_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = path.join(packageRoot, 'test', '.screenshots');

interface PanelState {
  id: string;
  chart: boolean;
  marks: number;
  rows: number;
  empty: string | null;
  error: string | null;
  tableMatches: string | true;
}

/** What each panel shows, read in the page: marks drawn, rows, and whether the table equals the view's data. */
async function panels(page: Page): Promise<PanelState[]> {
  return page.evaluate(() => {
    const w = window as unknown as {
      __dashboard: {
        panels: Record<
          string,
          {
            rows: Record<string, unknown>[];
            view: { data(n: string): Record<string, unknown>[] } | null;
            empty: string | null;
            error: string | null;
          }
        >;
      };
    };
    return Array.from(document.querySelectorAll<HTMLElement>('section.panel')).map((s) => {
      const id = s.dataset.panel as string;
      const p = w.__dashboard.panels[id];
      const svg = s.querySelector('.chart svg');
      const marks = svg
        ? svg.querySelectorAll(
            'g[class*="mark-"] path, g[class*="mark-"] rect, g[class*="mark-"] text, g[class*="mark-"] line',
          ).length
        : 0;
      let tableMatches: string | true = true;
      const table = s.querySelector('table');
      if (p && p.rows.length && table) {
        const data = p.view ? p.view.data('table') : p.rows;
        const headers = Array.from(table.querySelectorAll('thead th')).map((th) => th.textContent);
        const offset = headers[0] === 'Status' ? 1 : 0;
        const trs = Array.from(table.querySelectorAll('tbody tr'));
        if (trs.length !== data.length)
          tableMatches = `${trs.length} table rows, ${data.length} in the chart`;
        else
          trs.forEach((tr, i) => {
            const cells = Array.from(tr.querySelectorAll('td')).slice(offset);
            const fields = Object.keys(p.rows[0] as object).filter((k) => k !== '_problem');
            fields.forEach((f, j) => {
              const want = (data[i] as Record<string, unknown>)[f];
              const got = cells[j]?.getAttribute('title');
              if (tableMatches === true && got !== (want === null || want === undefined ? '' : String(want)))
                tableMatches = `row ${i} ${f}: table ${JSON.stringify(got)}, chart ${JSON.stringify(want)}`;
            });
          });
      }
      return {
        id,
        chart: Boolean(s.querySelector('.chart')),
        marks,
        rows: p ? p.rows.length : -1,
        empty: p ? p.empty : null,
        error: p ? p.error : null,
        tableMatches: tableMatches as string | true,
      };
    });
  });
}

describe('dashboard in headless Chromium', function () {
  this.timeout(90_000);
  let h: SeededHome;
  let srv: ServedHome;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) {
      // CI installs Debian's chromium (.ci/run); elsewhere say why the browser tests did not run.
      if (process.env.CI) throw new Error(`no browser at ${CHROMIUM}: apt-get install -y chromium`);
      console.warn(`      (skipped: no Chromium at ${CHROMIUM})`);
      this.skip();
    }
    h = await seededHome();
    srv = await serveHome(h);
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    });
    page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1000 });
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warn') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${(e as Error).message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
    page.on('response', (r) => {
      if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
      if (!r.url().startsWith(srv.url) && !r.url().startsWith('data:'))
        problems.push(`left the origin: ${r.url()}`);
    });
    fs.mkdirSync(SHOTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await srv?.close();
    h?.remove();
  });

  const open = async (urlPath: string): Promise<void> => {
    await page.goto(srv.url + urlPath);
    await page.waitForFunction(() => document.body.dataset.state !== 'loading', { timeout: 30_000 });
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready');
  };
  const reloaded = async (before: number): Promise<void> => {
    await page.waitForFunction(
      (n: number) =>
        (window as unknown as { __dashboard: { loads: number } }).__dashboard.loads > n &&
        document.body.dataset.state === 'ready',
      { timeout: 30_000 },
      before,
    );
  };
  const loads = (): Promise<number> =>
    page.evaluate(() => (window as unknown as { __dashboard: { loads: number } }).__dashboard.loads);

  for (const p of PAGES)
    it(`${p.title} (${p.path}): loads cleanly, every chart draws SVG marks, tables match the charts`, async () => {
      problems.length = 0;
      await open(p.path);
      const state = await panels(page);
      assert.ok(state.length > 0);
      for (const s of state) {
        assert.equal(s.error, null, `${s.id}: ${String(s.error)}`);
        if (s.rows > 0 && s.chart) assert.ok(s.marks > 0, `${s.id}: no SVG marks`);
        assert.equal(s.tableMatches, true, `${s.id}: ${String(s.tableMatches)}`);
        if (s.rows === 0) assert.ok(s.empty, `${s.id}: empty without an explanation`);
      }
      // The sample fills every domain chart (the overview's dead letters and parked deliveries are empty).
      if (p.id !== 'overview')
        assert.deepEqual(
          state.filter((s) => s.rows === 0).map((s) => s.id),
          [],
        );
      assert.ok(
        await page.evaluate(() =>
          Array.from(document.querySelectorAll('.chart')).every(
            (c) => c.querySelector('svg') && !c.querySelector('canvas'),
          ),
        ),
        'charts are SVG',
      );
      await page.screenshot({ path: path.join(SHOTS, `${p.id}.png`), fullPage: true });
      assert.deepEqual(problems, []);
    });

  it('the overview makes problems stand out in colour and text', async () => {
    await open('/');
    const flagged = await page.evaluate(() =>
      Array.from(document.querySelectorAll('section.panel.has-problem')).map((s) => ({
        id: (s as HTMLElement).dataset.panel,
        badge: s.querySelector('.badge')?.textContent,
        rows: Array.from(s.querySelectorAll('tr.problem td:first-child')).map((td) => td.textContent),
      })),
    );
    assert.deepEqual(
      flagged.map((f) => f.id).sort(),
      ['overview.ingest', 'overview.quarantine'],
      'the sample has rejected rows in quarantine',
    );
    const q = flagged.find((f) => f.id === 'overview.quarantine');
    assert.match(q?.badge ?? '', /⚠ quarantined \(2\)/);
    assert.deepEqual(q?.rows, ['⚠ quarantined', '⚠ quarantined']);
  });

  it('filters change the data and live in the URL (a view can be shared)', async () => {
    await open('/rainfall');
    const all = (await panels(page)).find((s) => s.id === 'rainfall.region_monthly');
    const n = await loads();
    await page.select('#filter-region', 'North');
    await reloaded(n);
    assert.match(page.url(), /\?region=North$/);
    const north = await page.evaluate(() =>
      (
        window as unknown as { __dashboard: { panels: Record<string, { rows: { region: string }[] }> } }
      ).__dashboard.panels['rainfall.region_monthly']?.rows.map((r) => r.region),
    );
    assert.ok(north && north.length > 0 && north.length < (all?.rows ?? 0));
    assert.ok(north.every((r) => r === 'North'));
    // The same URL opened afresh restores the filter.
    await open('/rainfall?region=North&from=2024-02-01');
    assert.equal(await page.$eval('#filter-region', (e) => (e as HTMLSelectElement).value), 'North');
    assert.equal(await page.$eval('#filter-from', (e) => (e as HTMLInputElement).value), '2024-02-01');
    const feb = (await panels(page)).find((s) => s.id === 'rainfall.region_monthly');
    assert.equal(feb?.rows, 1);
    assert.equal(feb?.tableMatches, true);
  });

  it('a range without data explains every empty panel instead of a blank', async () => {
    await open('/ecommerce?from=2031-01-01');
    const state = await panels(page);
    const dated = state.filter((s) => s.id !== 'ecommerce.low_stock');
    assert.ok(
      dated.every((s) => s.rows === 0 && s.empty),
      JSON.stringify(dated),
    );
    const texts = await page.$$eval('section.panel .empty', (els) => els.map((e) => e.textContent ?? ''));
    assert.ok(texts.length >= dated.length && texts.every((t) => t.length > 10));
  });
});
