/**
 * The dashboard's chart catalogue: every panel's fixed query (engine-neutral SQL: `@ref`/macros of
 * models/README.md, `$name` bound filters), the filters it accepts, its columns and its Vega-Lite spec.
 * The browser only ever names a chart and sends filter values; adding a chart is adding one entry.
 */
import type { FilterName } from './params';

export type PageId = 'overview' | 'rainfall' | 'ecommerce' | 'store' | 'network';
export type FieldType = 'quantitative' | 'temporal' | 'nominal' | 'ordinal';

export interface ChartField {
  name: string;
  title: string;
  type: FieldType;
  /** d3 number format for the table view (quantitative fields). */
  format?: string;
}

/** Rows of a panel the browser flags as a problem (colour plus the text in `problem`). */
export interface ProblemRule {
  /** Flag rows where this field is > 0, or (with `notEqual`) differs from / (with `equal`) is that value. */
  field: string;
  notEqual?: string;
  equal?: string;
  text: string;
}

interface PanelBase {
  id: string;
  page: PageId;
  title: string;
  description: string;
  fields: ChartField[];
  /** Vega-Lite spec (its data is the named dataset `table`); null: a table only. */
  spec: Record<string, unknown> | null;
  /** Shown instead of a blank when there are no rows. */
  empty: string;
  problem?: ProblemRule;
}

/** A panel answered by one fixed SQL query over the warehouse. */
export interface SqlPanel extends PanelBase {
  kind: 'sql';
  sql: string;
  params: FilterName[];
  /**
   * Tables the answer depends on: the cached answer is kept until one of them changes. Models only
   * (Gold tables or the tables under a view); panels over ops/events tables leave it empty and are
   * cached for a few seconds instead.
   */
  sources: string[];
}

/** A panel computed from pipeline state outside the warehouse (manifests, quarantine, parked deliveries). */
export interface HealthPanel extends PanelBase {
  kind: 'health';
  health: 'ingest' | 'quarantine' | 'parked' | 'events' | 'pulls';
  params: [];
  sources: [];
}

export type Panel = SqlPanel | HealthPanel;

const DATE_RANGE: FilterName[] = ['from', 'to'];
const inRange = (col: string): string => `${col} >= CAST($from AS DATE) AND ${col} <= CAST($to AS DATE)`;
const monthInRange = (col: string): string =>
  `${col} >= @date_trunc(CAST($from AS DATE), month) AND ${col} <= CAST($to AS DATE)`;
const weekInRange = (col: string): string =>
  `${col} >= @date_trunc(CAST($from AS DATE), week) AND ${col} <= CAST($to AS DATE)`;
const eq = (col: string, p: FilterName): string => `($${p} = '' OR ${col} = $${p})`;
const num = (x: string): string => `@cast(${x}, float64)`;

const q = (name: string, title: string, format = ',.2f'): ChartField => ({
  name,
  title,
  type: 'quantitative',
  format,
});
const n = (name: string, title: string): ChartField => ({ name, title, type: 'nominal' });
const t = (name: string, title: string): ChartField => ({ name, title, type: 'temporal' });
const int = (name: string, title: string): ChartField => q(name, title, ',d');

const SIZE = { width: 'container', height: 220 } as const;

// ------------------------------------------------------------------ overview / pipeline health

const OVERVIEW: Panel[] = [
  {
    id: 'overview.ingest',
    kind: 'health',
    health: 'ingest',
    page: 'overview',
    title: 'Files per dataset',
    description: 'Per dataset: the last file converted to Bronze, when, and rows in / written / rejected.',
    fields: [
      n('dataset', 'Dataset'),
      int('files', 'Files'),
      n('last_file', 'Last file'),
      n('last_at', 'Converted at'),
      int('rows_in', 'Rows in'),
      int('rows_written', 'Rows written'),
      int('rows_rejected', 'Rows rejected'),
      int('failed_files', 'Failed files'),
    ],
    spec: {
      ...SIZE,
      mark: { type: 'bar', tooltip: true },
      transform: [
        { fold: ['rows_written', 'rows_rejected'], as: ['outcome', 'rows'] },
        { calculate: "datum.outcome === 'rows_written' ? 'written' : 'rejected'", as: 'outcome' },
      ],
      encoding: {
        y: { field: 'dataset', type: 'nominal', title: null },
        x: { field: 'rows', type: 'quantitative', title: 'rows', stack: 'zero' },
        color: {
          field: 'outcome',
          type: 'nominal',
          scale: { domain: ['written', 'rejected'], range: ['#4c78a8', '#e45756'] },
          title: null,
        },
      },
    },
    empty:
      'No file has been converted yet: drop one with `smelter drop <file> --dataset <name>` or copy it into the raw bucket.',
    problem: { field: 'rows_rejected', text: 'rows rejected' },
    params: [],
    sources: [],
  },
  {
    id: 'overview.loads',
    kind: 'sql',
    page: 'overview',
    title: 'Warehouse loads per dataset',
    description:
      'Bronze files loaded into the warehouse (ops.load_ledger); problems are failed, blocked or pending loads.',
    sql: `SELECT dataset,
        COUNT(*) AS files,
        SUM(CASE WHEN status IN ('loaded', 'done') THEN 1 ELSE 0 END) AS loaded,
        SUM(CASE WHEN status IN ('failed', 'blocked', 'pending') THEN 1 ELSE 0 END) AS problems,
        SUM(COALESCE(rows, 0)) AS rows_loaded,
        @cast(MAX(updated_at), string) AS last_load
      FROM @ref(ops.load_ledger) GROUP BY dataset ORDER BY problems DESC, dataset`,
    params: [],
    sources: [],
    fields: [
      n('dataset', 'Dataset'),
      int('files', 'Files'),
      int('loaded', 'Loaded'),
      int('problems', 'Problems'),
      int('rows_loaded', 'Rows loaded'),
      n('last_load', 'Last load'),
    ],
    spec: null,
    empty: 'Nothing loaded into the warehouse yet (loadWarehouse runs on every new Bronze file).',
    problem: { field: 'problems', text: 'load problems' },
  },
  {
    id: 'overview.events',
    kind: 'health',
    health: 'events',
    page: 'overview',
    title: 'Events per type',
    description: 'Rows per event table and the freshness of each: how long ago its newest event happened.',
    fields: [
      n('event_type', 'Event table'),
      int('events', 'Events'),
      n('newest', 'Newest event'),
      n('lag', 'Lag of the newest'),
    ],
    spec: {
      ...SIZE,
      height: 160,
      mark: { type: 'bar', tooltip: true },
      encoding: {
        y: { field: 'event_type', type: 'nominal', title: null },
        x: { field: 'events', type: 'quantitative', title: 'events' },
      },
    },
    empty: 'No events yet: publish some with `smelter publish --generate 100` or `--file events.ndjson`.',
    params: [],
    sources: [],
  },
  {
    id: 'overview.dead_letters',
    kind: 'sql',
    page: 'overview',
    title: 'Dead letters by reason and type',
    description: 'Events routeEvent refused (events.dead_letter), counted per violation code and event type.',
    sql: `SELECT COALESCE(d.event_type, '(unreadable)') AS event_type, r.code AS reason, COUNT(*) AS dead_letters
      FROM @ref(events.dead_letter) AS d CROSS JOIN @unnest(d.reasons, r)
      GROUP BY 1, 2 ORDER BY dead_letters DESC, event_type, reason`,
    params: [],
    sources: [],
    fields: [n('event_type', 'Event type'), n('reason', 'Reason'), int('dead_letters', 'Dead letters')],
    spec: {
      ...SIZE,
      height: 160,
      mark: { type: 'bar', tooltip: true },
      encoding: {
        y: { field: 'reason', type: 'nominal', title: null },
        x: { field: 'dead_letters', type: 'quantitative', title: 'dead letters', stack: 'zero' },
        color: { field: 'event_type', type: 'nominal', title: 'event type' },
      },
    },
    empty: 'No dead letters: every event published so far was valid.',
    problem: { field: 'dead_letters', text: 'refused events' },
  },
  {
    id: 'overview.quarantine',
    kind: 'health',
    health: 'quarantine',
    page: 'overview',
    title: 'Quarantine by reason',
    description: 'Rejected rows (per dataset, column and check) and files that could not be converted.',
    fields: [
      n('dataset', 'Dataset'),
      n('kind', 'What'),
      n('reason', 'Reason'),
      int('count', 'Count'),
      n('example', 'Example'),
    ],
    spec: null,
    empty: 'Quarantine is empty: no rejected rows and no failed files.',
    problem: { field: 'count', text: 'quarantined' },
    params: [],
    sources: [],
  },
  {
    id: 'overview.parked',
    kind: 'health',
    health: 'parked',
    page: 'overview',
    title: 'Parked deliveries',
    description:
      'Storage events the local stack gave up delivering after its retries (SMELTER_LOCAL_MAX_ATTEMPTS).',
    fields: [
      n('parked_at', 'Parked at'),
      n('subject', 'Object'),
      n('target', 'Function'),
      int('attempts', 'Attempts'),
      n('last_error', 'Last error'),
    ],
    spec: null,
    empty: 'No parked deliveries.',
    problem: { field: 'attempts', text: 'parked' },
    params: [],
    sources: [],
  },
  {
    id: 'overview.pulls',
    kind: 'health',
    health: 'pulls',
    page: 'overview',
    title: 'Pulled sources',
    description:
      'API sources (contracts/sources) pulled on a schedule: the outcome of the latest run and when the pull state last moved forward.',
    fields: [
      n('source', 'Source'),
      n('status', 'Last run'),
      n('finished_at', 'Finished at'),
      int('records', 'Records'),
      int('pages', 'Pages'),
      n('state_saved_at', 'State saved at'),
      n('error', 'Error'),
    ],
    spec: null,
    empty: 'No API source is declared (contracts/sources/*.json).',
    problem: { field: 'status', equal: 'failed', text: 'pull failed' },
    params: [],
    sources: [],
  },
  {
    id: 'overview.audits',
    kind: 'sql',
    page: 'overview',
    title: 'Audits',
    description: 'The latest result of every audit of every model (ops.audit_results); failing ones first.',
    sql: `SELECT model, audit, status, failing_rows, @cast(checked_at, string) AS checked_at FROM (
        SELECT model, audit, status, failing_rows, checked_at,
          ROW_NUMBER() OVER (PARTITION BY model, audit ORDER BY checked_at DESC) AS rn
        FROM @ref(ops.audit_results)) AS a
      WHERE rn = 1 ORDER BY CASE WHEN status = 'pass' THEN 1 ELSE 0 END, model, audit`,
    params: [],
    sources: [],
    fields: [
      n('model', 'Model'),
      n('audit', 'Audit'),
      n('status', 'Status'),
      int('failing_rows', 'Failing rows'),
      n('checked_at', 'Checked at'),
    ],
    spec: null,
    empty: 'No audit has run yet (audits run with every model run).',
    problem: { field: 'status', notEqual: 'pass', text: 'audit failing' },
  },
  {
    id: 'overview.refreshes',
    kind: 'sql',
    page: 'overview',
    title: 'Model runs',
    description:
      'The last run of every Silver and Gold model (ops.model_runs): when, what triggered it, its outcome; models whose last run failed first.',
    sql: `SELECT model, status, @cast(finished_at, string) AS last_run, trigger AS last_trigger, rows AS rows_written, failures
      FROM (SELECT model, status, finished_at, trigger, rows,
          SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) OVER (PARTITION BY model) AS failures,
          ROW_NUMBER() OVER (PARTITION BY model ORDER BY finished_at DESC) AS rn
        FROM @ref(ops.model_runs)) AS r
      WHERE rn = 1 ORDER BY CASE WHEN status = 'ok' THEN 1 ELSE 0 END, finished_at DESC, model`,
    params: [],
    sources: [],
    fields: [
      n('model', 'Model'),
      n('status', 'Last outcome'),
      n('last_run', 'Last run'),
      n('last_trigger', 'Triggered by'),
      int('rows_written', 'Rows'),
      int('failures', 'Failed runs (all time)'),
    ],
    spec: null,
    empty: 'No model has run yet: `smelter refresh` runs them, `smelter up` does it on a schedule.',
    problem: { field: 'status', notEqual: 'ok', text: 'last run failed' },
  },
];

// ------------------------------------------------------------------ rainfall

const RAINFALL: Panel[] = [
  {
    id: 'rainfall.region_monthly',
    kind: 'sql',
    page: 'rainfall',
    title: 'Monthly rainfall per region',
    description: 'Total precipitation per region and month (gold.rainfall_region_monthly).',
    sql: `SELECT month, region, ${num('total_rain_mm')} AS total_rain_mm,
        ${num('avg_station_rain_mm')} AS avg_station_rain_mm, stations,
        ${num('rainy_station_days')} AS rainy_station_days
      FROM @ref(gold.rainfall_region_monthly)
      WHERE ${monthInRange('month')} AND ${eq('region', 'region')}
      ORDER BY month, region`,
    params: [...DATE_RANGE, 'region'],
    sources: ['gold.rainfall_region_monthly'],
    fields: [
      t('month', 'Month'),
      n('region', 'Region'),
      q('total_rain_mm', 'Total (mm)', ',.1f'),
      q('avg_station_rain_mm', 'Per station (mm)', ',.1f'),
      int('stations', 'Stations'),
      int('rainy_station_days', 'Rainy station-days'),
    ],
    spec: {
      ...SIZE,
      mark: { type: 'bar', tooltip: true },
      encoding: {
        x: { field: 'month', type: 'ordinal', timeUnit: 'yearmonth', title: 'month' },
        xOffset: { field: 'region', type: 'nominal' },
        y: { field: 'total_rain_mm', type: 'quantitative', title: 'total rain (mm)' },
        color: { field: 'region', type: 'nominal' },
      },
    },
    empty: 'No rainfall yet: `smelter drop obs.csv --dataset rainfall --wait` (`smelter up` drops a sample).',
  },
  {
    id: 'rainfall.station_monthly',
    kind: 'sql',
    page: 'rainfall',
    title: 'Monthly totals per station',
    description: 'Precipitation per station and month, rainy days (≥ 1 mm) and the wettest day.',
    sql: `SELECT month, station_id, region, ${num('total_rain_mm')} AS total_rain_mm,
        ${num('rainy_days')} AS rainy_days, max_daily_rain_mm
      FROM @ref(gold.rainfall_monthly)
      WHERE ${monthInRange('month')} AND ${eq('region', 'region')} AND ${eq('station_id', 'station')}
      ORDER BY month, station_id`,
    params: [...DATE_RANGE, 'region', 'station'],
    sources: ['gold.rainfall_monthly'],
    fields: [
      t('month', 'Month'),
      n('station_id', 'Station'),
      n('region', 'Region'),
      q('total_rain_mm', 'Total (mm)', ',.1f'),
      int('rainy_days', 'Rainy days'),
      q('max_daily_rain_mm', 'Wettest day (mm)', ',.1f'),
    ],
    spec: {
      ...SIZE,
      height: { step: 14 },
      mark: { type: 'rect', tooltip: true },
      encoding: {
        x: { field: 'month', type: 'ordinal', timeUnit: 'yearmonth', title: 'month' },
        y: { field: 'station_id', type: 'nominal', title: 'station' },
        color: { field: 'total_rain_mm', type: 'quantitative', title: 'mm', scale: { scheme: 'blues' } },
      },
    },
    empty: 'No station has monthly totals yet.',
  },
  {
    id: 'rainfall.rainy_days',
    kind: 'sql',
    page: 'rainfall',
    title: 'Rainy days per station',
    description: 'Days with at least 1 mm (the WMO convention) per station, in the selected range.',
    sql: `SELECT station_id, region, SUM(CASE WHEN is_rainy_day THEN 1 ELSE 0 END) AS rainy_days,
        COUNT(*) AS days_observed
      FROM @ref(gold.rainfall_daily)
      WHERE ${inRange('date')} AND ${eq('region', 'region')} AND ${eq('station_id', 'station')}
      GROUP BY station_id, region ORDER BY rainy_days DESC, station_id`,
    params: [...DATE_RANGE, 'region', 'station'],
    sources: ['gold.rainfall_daily'],
    fields: [
      n('station_id', 'Station'),
      n('region', 'Region'),
      int('rainy_days', 'Rainy days'),
      int('days_observed', 'Days observed'),
    ],
    spec: {
      ...SIZE,
      mark: { type: 'bar', tooltip: true },
      encoding: {
        x: { field: 'station_id', type: 'nominal', sort: '-y', title: 'station' },
        y: { field: 'rainy_days', type: 'quantitative', title: 'rainy days' },
        color: { field: 'region', type: 'nominal' },
      },
    },
    empty: 'No daily rainfall in this range.',
  },
  {
    id: 'rainfall.payouts',
    kind: 'sql',
    page: 'rainfall',
    title: 'Payout triggers',
    description: 'Station-days above a parametric-insurance threshold, with the highest tier reached.',
    sql: `SELECT date, station_id, region, rain_mm, tier, ${num('threshold_mm')} AS threshold_mm,
        ${num('payout_ratio')} AS payout_ratio, excess_mm
      FROM @ref(gold.rainfall_payout_triggers)
      WHERE ${inRange('date')} AND ${eq('region', 'region')} AND ${eq('station_id', 'station')}
      ORDER BY date DESC, station_id LIMIT 500`,
    params: [...DATE_RANGE, 'region', 'station'],
    sources: ['gold.rainfall_payout_triggers'],
    fields: [
      t('date', 'Date'),
      n('station_id', 'Station'),
      n('region', 'Region'),
      q('rain_mm', 'Rain (mm)', ',.1f'),
      n('tier', 'Tier'),
      q('threshold_mm', 'Threshold (mm)', ',.1f'),
      q('payout_ratio', 'Payout ratio', '.0%'),
      q('excess_mm', 'Excess (mm)', ',.1f'),
    ],
    spec: {
      ...SIZE,
      height: 160,
      mark: { type: 'circle', tooltip: true },
      encoding: {
        x: { field: 'date', type: 'temporal', title: 'date' },
        y: { field: 'rain_mm', type: 'quantitative', title: 'rain (mm)' },
        color: { field: 'tier', type: 'nominal' },
        size: { field: 'payout_ratio', type: 'quantitative', legend: null },
      },
    },
    empty: 'No station-day crossed a payout threshold (50 mm) in this range.',
  },
];

// ------------------------------------------------------------------ e-commerce

const ECOMMERCE: Panel[] = [
  {
    id: 'ecommerce.revenue_daily',
    kind: 'sql',
    page: 'ecommerce',
    title: 'Revenue per day',
    description: 'Order revenue per order day by current order status (gold.ecommerce_daily_revenue).',
    sql: `SELECT order_date, status, ${num('SUM(revenue)')} AS revenue, SUM(orders) AS orders
      FROM @ref(gold.ecommerce_daily_revenue) WHERE ${inRange('order_date')}
      GROUP BY order_date, status ORDER BY order_date, status`,
    params: DATE_RANGE,
    sources: ['gold.ecommerce_daily_revenue'],
    fields: [t('order_date', 'Day'), n('status', 'Status'), q('revenue', 'Revenue'), int('orders', 'Orders')],
    spec: {
      ...SIZE,
      mark: { type: 'bar', tooltip: true },
      encoding: {
        x: { field: 'order_date', type: 'temporal', timeUnit: 'yearmonthdate', title: 'day' },
        y: { field: 'revenue', type: 'quantitative', title: 'revenue', stack: 'zero' },
        color: { field: 'status', type: 'nominal' },
      },
    },
    empty:
      'No orders yet: `smelter publish --file samples/ecommerce/events.ndjson --wait` then `smelter refresh`.',
  },
  {
    id: 'ecommerce.funnel',
    kind: 'sql',
    page: 'ecommerce',
    title: 'Funnel',
    description: 'Sessions with a page view, an add to cart and a purchase, over the selected days.',
    sql: `WITH f AS (SELECT * FROM @ref(gold.ecommerce_funnel_daily) WHERE ${inRange('event_date')})
      SELECT 1 AS step_order, 'page view' AS step, @cast(SUM(page_view_sessions), int64) AS sessions FROM f HAVING COUNT(*) > 0
      UNION ALL SELECT 2, 'add to cart', @cast(SUM(add_to_cart_sessions), int64) FROM f HAVING COUNT(*) > 0
      UNION ALL SELECT 3, 'purchase', @cast(SUM(purchase_sessions), int64) FROM f HAVING COUNT(*) > 0
      ORDER BY step_order`,
    params: DATE_RANGE,
    sources: ['gold.ecommerce_funnel_daily'],
    fields: [int('step_order', '#'), n('step', 'Step'), int('sessions', 'Sessions')],
    spec: {
      ...SIZE,
      height: 150,
      mark: { type: 'bar', tooltip: true },
      encoding: {
        y: { field: 'step', type: 'nominal', sort: { field: 'step_order' }, title: null },
        x: { field: 'sessions', type: 'quantitative', title: 'sessions' },
      },
    },
    empty: 'No user activity in this range.',
  },
  {
    id: 'ecommerce.dau',
    kind: 'sql',
    page: 'ecommerce',
    title: 'Daily active users',
    description: 'Distinct users with any activity per day, and their sessions.',
    sql: `SELECT event_date, active_users, sessions FROM @ref(gold.ecommerce_daily_active_users)
      WHERE ${inRange('event_date')} ORDER BY event_date`,
    params: DATE_RANGE,
    sources: ['gold.ecommerce_daily_active_users'],
    fields: [t('event_date', 'Day'), int('active_users', 'Active users'), int('sessions', 'Sessions')],
    spec: {
      ...SIZE,
      mark: { type: 'line', point: true, tooltip: true },
      encoding: {
        x: { field: 'event_date', type: 'temporal', title: 'day' },
        y: { field: 'active_users', type: 'quantitative', title: 'active users' },
      },
    },
    empty: 'No user activity in this range.',
  },
  {
    id: 'ecommerce.retention',
    kind: 'sql',
    page: 'ecommerce',
    title: 'Weekly retention',
    description: 'Share of each weekly cohort (ISO week of the first activity) active N weeks later.',
    sql: `SELECT cohort_week, week_number, cohort_size, active_users, retention
      FROM @ref(gold.ecommerce_weekly_retention) WHERE ${weekInRange('cohort_week')}
      ORDER BY cohort_week, week_number`,
    params: DATE_RANGE,
    sources: ['gold.ecommerce_retention_cells'],
    fields: [
      t('cohort_week', 'Cohort week'),
      int('week_number', 'Week'),
      int('cohort_size', 'Cohort size'),
      int('active_users', 'Active'),
      q('retention', 'Retention', '.0%'),
    ],
    spec: {
      ...SIZE,
      height: { step: 28 },
      layer: [
        {
          mark: { type: 'rect', tooltip: true },
          encoding: {
            color: {
              field: 'retention',
              type: 'quantitative',
              scale: { domain: [0, 1], scheme: 'greens' },
              legend: { format: '.0%' },
            },
          },
        },
        {
          mark: { type: 'text', baseline: 'middle' },
          encoding: {
            text: { field: 'retention', type: 'quantitative', format: '.0%' },
            color: { condition: { test: 'datum.retention > 0.6', value: 'white' }, value: 'black' },
          },
        },
      ],
      encoding: {
        x: { field: 'week_number', type: 'ordinal', title: 'weeks after the first', axis: { labelAngle: 0 } },
        y: { field: 'cohort_week', type: 'ordinal', timeUnit: 'yearmonthdate', title: 'cohort week' },
      },
    },
    empty: 'No cohorts in this range.',
  },
  {
    id: 'ecommerce.top_products',
    kind: 'sql',
    page: 'ecommerce',
    title: 'Top products',
    description: 'The ten products with the most revenue in the selected days (orders not cancelled).',
    sql: `SELECT product_id, ${num('SUM(revenue)')} AS revenue, @cast(SUM(units), int64) AS units, SUM(orders) AS orders
      FROM @ref(gold.ecommerce_product_daily) WHERE ${inRange('order_date')}
      GROUP BY product_id ORDER BY revenue DESC, product_id LIMIT 10`,
    params: DATE_RANGE,
    sources: ['gold.ecommerce_product_daily'],
    fields: [
      n('product_id', 'Product'),
      q('revenue', 'Revenue'),
      int('units', 'Units'),
      int('orders', 'Orders'),
    ],
    spec: {
      ...SIZE,
      mark: { type: 'bar', tooltip: true },
      encoding: {
        y: { field: 'product_id', type: 'nominal', sort: '-x', title: null },
        x: { field: 'revenue', type: 'quantitative', title: 'revenue' },
      },
    },
    empty: 'No products sold in this range.',
  },
  {
    id: 'ecommerce.low_stock',
    kind: 'sql',
    page: 'ecommerce',
    title: 'Low-stock inventory',
    description: 'Current stock per product and warehouse flagged low (gold.ecommerce_inventory_current).',
    sql: `SELECT product_id, warehouse_id, quantity_on_hand, last_change_type, @cast(updated_at, string) AS updated_at
      FROM @ref(gold.ecommerce_inventory_current) WHERE low_stock
      ORDER BY quantity_on_hand, product_id, warehouse_id LIMIT 200`,
    params: [],
    sources: ['gold.ecommerce_inventory_current'],
    fields: [
      n('product_id', 'Product'),
      n('warehouse_id', 'Warehouse'),
      int('quantity_on_hand', 'On hand'),
      n('last_change_type', 'Last change'),
      n('updated_at', 'Updated at'),
    ],
    spec: {
      ...SIZE,
      height: { step: 16 },
      mark: { type: 'bar', tooltip: true, color: '#e45756' },
      transform: [{ calculate: "datum.product_id + ' @ ' + datum.warehouse_id", as: 'item' }],
      encoding: {
        y: { field: 'item', type: 'nominal', sort: 'x', title: null },
        x: {
          field: 'quantity_on_hand',
          type: 'quantitative',
          title: 'on hand',
          axis: { tickMinStep: 1, format: 'd' },
        },
      },
    },
    empty: 'Nothing is low on stock.',
  },
];

// ------------------------------------------------------------------ store

const STORE: Panel[] = [
  {
    id: 'store.segments',
    kind: 'sql',
    page: 'store',
    title: 'Purchases by segment',
    description:
      'Age group × gender: customers, purchases and the average purchase value (the analysts’ demographics query).',
    sql: `WITH u AS (
        SELECT age_group, gender, COUNT(*) AS users FROM @ref(gold.store_customers) GROUP BY age_group, gender),
      p AS (
        SELECT age_group, gender, SUM(purchases) AS purchases, SUM(revenue) AS revenue
        FROM @ref(gold.store_purchases_daily) WHERE ${inRange('cart_date')} GROUP BY age_group, gender)
      SELECT u.age_group, u.gender, u.users, COALESCE(p.purchases, 0) AS purchases,
        ${num('COALESCE(p.revenue, 0)')} AS revenue,
        @safe_divide(p.revenue, p.purchases) AS avg_purchase_value
      FROM u LEFT JOIN p ON p.age_group = u.age_group AND p.gender = u.gender
      ORDER BY u.age_group, u.gender`,
    params: DATE_RANGE,
    sources: ['gold.store_customers', 'gold.store_purchases_daily'],
    fields: [
      n('age_group', 'Age group'),
      n('gender', 'Gender'),
      int('users', 'Users'),
      int('purchases', 'Purchases'),
      q('revenue', 'Revenue'),
      q('avg_purchase_value', 'Average purchase'),
    ],
    spec: {
      ...SIZE,
      mark: { type: 'bar', tooltip: true },
      encoding: {
        x: { field: 'age_group', type: 'nominal', title: 'age group', axis: { labelAngle: 0 } },
        xOffset: { field: 'gender', type: 'nominal' },
        y: { field: 'avg_purchase_value', type: 'quantitative', title: 'average purchase value' },
        color: { field: 'gender', type: 'nominal' },
      },
    },
    empty:
      'No customers yet: drop a users export (`smelter drop samples/store/users.json --dataset store_users`).',
  },
  {
    id: 'store.category_daily',
    kind: 'sql',
    page: 'store',
    title: 'Revenue per category and day',
    description: 'Units and revenue per product category and cart day (gold.store_category_daily).',
    sql: `SELECT cart_date, category, ${num('revenue')} AS revenue, @cast(units, int64) AS units, carts
      FROM @ref(gold.store_category_daily) WHERE ${inRange('cart_date')} ORDER BY cart_date, category`,
    params: DATE_RANGE,
    sources: ['gold.store_category_daily'],
    fields: [
      t('cart_date', 'Day'),
      n('category', 'Category'),
      q('revenue', 'Revenue'),
      int('units', 'Units'),
      int('carts', 'Carts'),
    ],
    spec: {
      ...SIZE,
      mark: { type: 'bar', tooltip: true },
      encoding: {
        x: { field: 'cart_date', type: 'temporal', timeUnit: 'yearmonthdate', title: 'day' },
        y: { field: 'revenue', type: 'quantitative', title: 'revenue', stack: 'zero' },
        color: { field: 'category', type: 'nominal' },
      },
    },
    empty: 'No carts in this range.',
  },
];

// ------------------------------------------------------------------ network

const NETWORK_FILTERS: FilterName[] = [...DATE_RANGE, 'region', 'isp'];
const networkWhere = `${inRange('measured_date')} AND ${eq('region', 'region')} AND ${eq('isp', 'isp')}`;

const NETWORK: Panel[] = [
  {
    id: 'network.download_daily',
    kind: 'sql',
    page: 'network',
    title: 'Average download per region',
    description:
      'Average download speed per day and region, weighted by measurements (gold.network_regional_daily).',
    sql: `SELECT measured_date, region, SUM(measurements) AS measurements,
        SUM(avg_download_mbps * measurements) / SUM(measurements) AS avg_download_mbps,
        SUM(avg_latency_ms * measurements) / SUM(measurements) AS avg_latency_ms
      FROM @ref(gold.network_regional_daily) WHERE ${networkWhere}
      GROUP BY measured_date, region ORDER BY measured_date, region`,
    params: NETWORK_FILTERS,
    sources: ['gold.network_regional_daily'],
    fields: [
      t('measured_date', 'Day'),
      n('region', 'Region'),
      int('measurements', 'Measurements'),
      q('avg_download_mbps', 'Download (Mbps)', ',.1f'),
      q('avg_latency_ms', 'Latency (ms)', ',.0f'),
    ],
    spec: {
      ...SIZE,
      mark: { type: 'line', point: true, tooltip: true },
      encoding: {
        x: { field: 'measured_date', type: 'temporal', title: 'day' },
        y: { field: 'avg_download_mbps', type: 'quantitative', title: 'download (Mbps)' },
        color: { field: 'region', type: 'nominal' },
      },
    },
    empty:
      'No measurements in this range: `smelter drop samples/network/measurements.csv --dataset network_measurements`.',
  },
  {
    id: 'network.regional',
    kind: 'sql',
    page: 'network',
    title: 'Regional metrics',
    description:
      'Per region and ISP over the selected days: tests, users, average speeds and the worst latency.',
    sql: `SELECT region, isp, SUM(measurements) AS measurements,
        SUM(avg_download_mbps * measurements) / SUM(measurements) AS avg_download_mbps,
        SUM(avg_upload_mbps * measurements) / SUM(measurements) AS avg_upload_mbps,
        SUM(avg_latency_ms * measurements) / SUM(measurements) AS avg_latency_ms,
        MIN(min_download_mbps) AS min_download_mbps, MAX(max_latency_ms) AS max_latency_ms
      FROM @ref(gold.network_regional_daily) WHERE ${networkWhere}
      GROUP BY region, isp ORDER BY region, isp`,
    params: NETWORK_FILTERS,
    sources: ['gold.network_regional_daily'],
    fields: [
      n('region', 'Region'),
      n('isp', 'ISP'),
      int('measurements', 'Measurements'),
      q('avg_download_mbps', 'Download (Mbps)', ',.1f'),
      q('avg_upload_mbps', 'Upload (Mbps)', ',.1f'),
      q('avg_latency_ms', 'Latency (ms)', ',.0f'),
      q('min_download_mbps', 'Slowest (Mbps)', ',.1f'),
      q('max_latency_ms', 'Worst latency (ms)', ',.0f'),
    ],
    spec: {
      ...SIZE,
      height: 300,
      mark: { type: 'bar', tooltip: true },
      encoding: {
        y: { field: 'region', type: 'nominal', title: null },
        yOffset: { field: 'isp', type: 'nominal' },
        x: { field: 'avg_download_mbps', type: 'quantitative', title: 'download (Mbps)' },
        color: { field: 'isp', type: 'nominal', title: 'ISP' },
      },
    },
    empty: 'No measurements in this range.',
  },
  {
    id: 'network.frustration',
    kind: 'sql',
    page: 'network',
    title: 'Frustration index',
    description: 'Share of sessions whose average download stayed under 10 Mbps, per day and region.',
    sql: `SELECT measured_date, region, SUM(sessions) AS sessions, @cast(SUM(frustrated_sessions), int64) AS frustrated_sessions,
        @safe_divide(SUM(frustrated_sessions), SUM(sessions)) AS frustration_index
      FROM @ref(gold.network_frustration_daily) WHERE ${networkWhere}
      GROUP BY measured_date, region ORDER BY measured_date, region`,
    params: NETWORK_FILTERS,
    sources: ['gold.network_frustration_daily'],
    fields: [
      t('measured_date', 'Day'),
      n('region', 'Region'),
      int('sessions', 'Sessions'),
      int('frustrated_sessions', 'Frustrated'),
      q('frustration_index', 'Frustration index', '.0%'),
    ],
    spec: {
      ...SIZE,
      mark: { type: 'line', point: true, tooltip: true },
      encoding: {
        x: { field: 'measured_date', type: 'temporal', title: 'day' },
        y: {
          field: 'frustration_index',
          type: 'quantitative',
          title: 'frustrated sessions',
          axis: { format: '.0%' },
        },
        color: { field: 'region', type: 'nominal' },
      },
    },
    empty: 'No sessions in this range.',
  },
  {
    id: 'network.staircase',
    kind: 'sql',
    page: 'network',
    title: 'Frustration staircase',
    description:
      'Share of sessions at or below each download-speed step, per region over the selected days: the lower a region’s staircase starts, the fewer frustrated users.',
    sql: `SELECT region, tier, tier_label, SUM(sessions) AS sessions,
        @safe_divide(SUM(sessions), SUM(SUM(sessions)) OVER (PARTITION BY region)) AS share,
        @safe_divide(
          SUM(SUM(sessions)) OVER (PARTITION BY region ORDER BY tier ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
          SUM(SUM(sessions)) OVER (PARTITION BY region)) AS cumulative_share
      FROM @ref(gold.network_frustration_staircase)
      WHERE ${inRange('session_date')} AND ${eq('region', 'region')} AND ${eq('isp', 'isp')}
      GROUP BY region, tier, tier_label ORDER BY region, tier`,
    params: NETWORK_FILTERS,
    sources: ['gold.network_frustration_staircase'],
    fields: [
      n('region', 'Region'),
      int('tier', 'Step'),
      n('tier_label', 'Download speed'),
      int('sessions', 'Sessions'),
      q('share', 'Share', '.0%'),
      q('cumulative_share', 'At or below', '.0%'),
    ],
    spec: {
      ...SIZE,
      mark: { type: 'line', interpolate: 'step-after', point: true, tooltip: true },
      encoding: {
        x: {
          field: 'tier_label',
          type: 'ordinal',
          sort: { field: 'tier' },
          title: 'average download of the session',
          axis: { labelAngle: 0 },
        },
        y: {
          field: 'cumulative_share',
          type: 'quantitative',
          title: 'sessions at or below',
          axis: { format: '.0%' },
          scale: { domain: [0, 1] },
        },
        color: { field: 'region', type: 'nominal' },
      },
    },
    empty: 'No sessions in this range.',
  },
  {
    id: 'network.retention',
    kind: 'sql',
    page: 'network',
    title: 'Retention cohorts',
    description: 'Share of each weekly cohort of measuring users that measured again N weeks later.',
    sql: `SELECT cohort_week, week_number, cohort_size, active_users, retention
      FROM @ref(gold.network_user_retention) WHERE ${weekInRange('cohort_week')}
      ORDER BY cohort_week, week_number`,
    params: DATE_RANGE,
    sources: ['gold.network_retention_cells'],
    fields: [
      t('cohort_week', 'Cohort week'),
      int('week_number', 'Week'),
      int('cohort_size', 'Cohort size'),
      int('active_users', 'Active'),
      q('retention', 'Retention', '.0%'),
    ],
    spec: {
      ...SIZE,
      height: { step: 28 },
      layer: [
        {
          mark: { type: 'rect', tooltip: true },
          encoding: {
            color: {
              field: 'retention',
              type: 'quantitative',
              scale: { domain: [0, 1], scheme: 'purples' },
              legend: { format: '.0%' },
            },
          },
        },
        {
          mark: { type: 'text', baseline: 'middle' },
          encoding: {
            text: { field: 'retention', type: 'quantitative', format: '.0%' },
            color: { condition: { test: 'datum.retention > 0.6', value: 'white' }, value: 'black' },
          },
        },
      ],
      encoding: {
        x: { field: 'week_number', type: 'ordinal', title: 'weeks after the first', axis: { labelAngle: 0 } },
        y: { field: 'cohort_week', type: 'ordinal', timeUnit: 'yearmonthdate', title: 'cohort week' },
      },
    },
    empty: 'No cohorts in this range.',
  },
];

/** Every panel, in page order. */
export const PANELS: readonly Panel[] = [...OVERVIEW, ...RAINFALL, ...ECOMMERCE, ...STORE, ...NETWORK];

export function panel(id: string): Panel | undefined {
  return PANELS.find((p) => p.id === id);
}
