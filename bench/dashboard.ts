/**
 * npm run bench:dashboard [-- --runs 5 --quick]
 *
 * The dashboard on the bundled samples (a local warehouse filled as the tests fill it), served as
 * `smelter dashboard` serves it (DuckDB read-only, fixed-query JSON API). Per page:
 *   - data: every panel of the page requested in parallel, as the browser does — cold (a fresh
 *     dashboard: nothing cached, the DuckDB file opened) and warm (answers cached until Gold changes);
 *   - reference: the same panel queries run straight on one read-only DuckDB connection (no HTTP,
 *     no cache, no JSON), in the same run;
 *   - page complete in headless Chromium (Debian's chromium via puppeteer-core): navigation to every
 *     chart drawn (`data-state="ready"`), first visit and repeat visit.
 * Targets (issue 12): data ≤ 200 ms, page ≤ 1.5 s. Reported, never asserted.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import puppeteer from 'puppeteer-core';
import { serveDashboard } from '../cli/local/dashboard';
import { FsObjectStore } from '../shared/adapters/storage/fs';
import { DuckDbEngine } from '../shared/adapters/warehouse/duckdb';
import { getLocalWarehouse, warehouseFile } from '../shared/adapters/warehouse/duckdb-local';
import { ReadOnlyDuckDb } from '../shared/adapters/warehouse/duckdb-readonly';
import { loadConfig, type Config } from '../shared/config';
import { createDashboard } from '../shared/composition/dashboard';
import { dashboardHandler } from '../shared/dashboard/http';
import { PAGES, pagePanels } from '../shared/dashboard/pages';
import { createLogger } from '../shared/log';
import { packageRoot } from '../shared/paths';
import { seedWarehouse } from '../shared/samples/warehouse';
import { Warehouse } from '../shared/warehouse/service';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}
const quick = process.argv.includes('--quick');
const runs = Number(arg('runs', quick ? '2' : '5'));
const CHROMIUM = process.env.SMELTER_CHROMIUM ?? '/usr/bin/chromium';
const TARGET_DATA_MS = 200;
const TARGET_PAGE_MS = 1500;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.floor((s.length - 1) / 2)] as number) : NaN;
};
const ms = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : '–');

type PageId = (typeof PAGES)[number]['id'];

interface PageRow {
  page: string;
  panels: number;
  cold: number;
  warm: number;
  direct: number;
  first?: number;
  repeat?: number;
}

/** A local warehouse filled with the bundled samples, as the tests fill it. */
async function buildWarehouse(cfg: Config, home: string): Promise<void> {
  const store = new FsObjectStore(home);
  const local = await getLocalWarehouse(home);
  const wh = await Warehouse.open({
    engine: new DuckDbEngine(local, store),
    contractsDir: cfg.contractsDir,
    modelsDir: cfg.modelsDir,
    latenessMs: cfg.lateness,
    log: createLogger({ format: 'silent' }),
  });
  await seedWarehouse({
    wh,
    store,
    bronzeBucket: cfg.bronzeBucket,
    quarantineBucket: cfg.quarantineBucket,
    contractsDir: cfg.contractsDir,
  });
  await local.close();
}

/** Every panel of a page requested in parallel, as the browser does; the time until all answered. */
async function pageData(url: string, pageId: PageId): Promise<number> {
  const s = performance.now();
  await Promise.all(
    pagePanels(pageId).map(async (p) => {
      const res = await fetch(`${url}/api/charts/${p.id}`);
      const body = (await res.json()) as { error?: string };
      if (!res.ok || body.error) throw new Error(`${p.id}: ${JSON.stringify(body)}`);
    }),
  );
  return performance.now() - s;
}

/** Reference: the page's queries on one read-only connection, nothing else. */
async function directQueries(home: string, pageId: PageId): Promise<number> {
  const ro = new ReadOnlyDuckDb(warehouseFile(home));
  const s = performance.now();
  for (const p of pagePanels(pageId))
    if (p.kind === 'sql')
      // (a panel over a table that does not exist yet, e.g. no dead letters, answers empty)
      await ro
        .query(
          ro.dialect.render(p.sql, { where: p.id }),
          Object.fromEntries(
            p.params.map((f) => [f, f === 'from' ? '0001-01-01' : f === 'to' ? '9999-12-31' : '']),
          ),
        )
        .catch(() => []);
  const took = performance.now() - s;
  await ro.close();
  return took;
}

/** Per page: data cold (a fresh dashboard) and cached, and the reference queries; medians of `runs`. */
async function measureData(cfg: Config, home: string): Promise<PageRow[]> {
  const rows: PageRow[] = [];
  for (const pg of PAGES) {
    const cold: number[] = [];
    const warm: number[] = [];
    const direct: number[] = [];
    for (let i = 0; i < runs; i++) {
      const w = await createDashboard(cfg);
      const served = await serveDashboard(dashboardHandler(w.service), 0);
      cold.push(await pageData(served.url, pg.id));
      warm.push(await pageData(served.url, pg.id));
      await served.close();
      await w.close();
      direct.push(await directQueries(home, pg.id));
    }
    rows.push({
      page: pg.path,
      panels: pagePanels(pg.id).length,
      cold: median(cold),
      warm: median(warm),
      direct: median(direct),
    });
  }
  return rows;
}

/** Page complete in headless Chromium, first and repeat visit, into each row; a note when there is none. */
async function measurePages(cfg: Config, rows: PageRow[]): Promise<string> {
  if (!fs.existsSync(CHROMIUM)) return `(no Chromium at ${CHROMIUM}: page times not measured)`;
  const w = await createDashboard(cfg);
  const served = await serveDashboard(dashboardHandler(w.service), 0);
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    for (const r of rows) {
      const first: number[] = [];
      const repeat: number[] = [];
      for (let i = 0; i < runs; i++) {
        // A fresh browser context per visit pair: the first visit loads the libraries, the repeat one has them cached.
        const ctx = await browser.createBrowserContext();
        const page = await ctx.newPage();
        await page.setViewport({ width: 1400, height: 1000 });
        for (const into of [first, repeat]) {
          const s = performance.now();
          await page.goto(served.url + r.page);
          await page.waitForFunction("document.body.dataset.state === 'ready'", { timeout: 30_000 });
          into.push(performance.now() - s);
        }
        await ctx.close();
      }
      r.first = median(first);
      r.repeat = median(repeat);
    }
  } finally {
    await browser.close();
    await served.close();
    await w.close();
  }
  return '';
}

function printReport(rows: PageRow[], browserNote: string): void {
  console.log(`median of ${runs} runs; targets: data ≤ ${TARGET_DATA_MS} ms, page ≤ ${TARGET_PAGE_MS} ms\n`);
  console.log(
    '| page | panels | data, cold | data, cached | reference: queries on DuckDB | page complete, first visit | page complete, repeat |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows)
    console.log(
      `| ${r.page} | ${r.panels} | ${ms(r.cold)} | ${ms(r.warm)} | ${ms(r.direct)} | ${ms(r.first ?? NaN)} | ${ms(r.repeat ?? NaN)} |`,
    );
  if (browserNote) console.log(browserNote);
  const worstData = Math.max(...rows.map((r) => r.cold));
  const worstPage = Math.max(...rows.map((r) => r.first ?? NaN));
  console.log(
    `\nworst page: data ${ms(worstData)} (${worstData <= TARGET_DATA_MS ? 'within' : 'over'} ${TARGET_DATA_MS} ms), complete ${ms(worstPage)} (${worstPage <= TARGET_PAGE_MS ? 'within' : 'over'} ${TARGET_PAGE_MS} ms)`,
  );
  console.log(
    JSON.stringify({
      bench: 'dashboard',
      runs,
      pages: rows,
      targets: { dataMs: TARGET_DATA_MS, pageMs: TARGET_PAGE_MS },
    }),
  );
}

async function main(): Promise<void> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-bench-dash-'));
  const cfg = loadConfig(
    { ...process.env, SMELTER_HOME: home },
    { contractsDir: path.join(packageRoot, 'contracts'), modelsDir: path.join(packageRoot, 'models') },
  );
  const t0 = performance.now();
  await buildWarehouse(cfg, home);
  console.log(`warehouse with the bundled samples: ${ms(performance.now() - t0)} to build (${home})\n`);
  const rows = await measureData(cfg, home);
  const browserNote = await measurePages(cfg, rows);
  printReport(rows, browserNote);
  fs.rmSync(home, { recursive: true, force: true });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
