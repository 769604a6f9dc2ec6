/**
 * The dashboard's pages: `/` is the overview, then one page per domain. A page lists its filters (kept
 * in the URL so a view can be shared) and, for choice filters, the fixed query listing their options.
 */
import { PANELS, type PageId, type Panel } from './charts';
import type { FilterName } from './params';

export interface PageFilter {
  name: FilterName;
  /** Choice filters: a fixed query returning the options as column `v` (ordered). */
  optionsSql?: string;
  optionsSource?: string;
}

export interface Page {
  id: PageId;
  path: string;
  title: string;
  description: string;
  filters: PageFilter[];
  /** Refresh by polling versions (Gold pages) or on a timer (overview: ops/events tables, files). */
  refresh: 'versions' | 'timer';
}

const RANGE: PageFilter[] = [{ name: 'from' }, { name: 'to' }];

export const PAGES: readonly Page[] = [
  {
    id: 'overview',
    path: '/',
    title: 'Overview',
    description:
      'Pipeline health: files, loads, events, dead letters, quarantine, parked deliveries, audits.',
    filters: [],
    refresh: 'timer',
  },
  {
    id: 'rainfall',
    path: '/rainfall',
    title: 'Rainfall',
    description: 'Monthly totals per station and region, rainy days and the payout triggers.',
    filters: [
      ...RANGE,
      {
        name: 'region',
        optionsSql: 'SELECT DISTINCT region AS v FROM @ref(gold.rainfall_region_monthly) ORDER BY v',
        optionsSource: 'gold.rainfall_region_monthly',
      },
      {
        name: 'station',
        optionsSql: 'SELECT DISTINCT station_id AS v FROM @ref(gold.rainfall_monthly) ORDER BY v',
        optionsSource: 'gold.rainfall_monthly',
      },
    ],
    refresh: 'versions',
  },
  {
    id: 'ecommerce',
    path: '/ecommerce',
    title: 'E-commerce',
    description:
      'Revenue per day, the funnel, daily active users, weekly retention, top products, low stock.',
    filters: RANGE,
    refresh: 'versions',
  },
  {
    id: 'store',
    path: '/store',
    title: 'Store',
    description: 'Purchases by segment (age group × gender) and revenue per category and day.',
    filters: RANGE,
    refresh: 'versions',
  },
  {
    id: 'network',
    path: '/network',
    title: 'Network',
    description: 'Regional connection quality, the frustration index and retention cohorts.',
    filters: [
      ...RANGE,
      {
        name: 'region',
        optionsSql: 'SELECT DISTINCT region AS v FROM @ref(gold.network_regional_daily) ORDER BY v',
        optionsSource: 'gold.network_regional_daily',
      },
      {
        name: 'isp',
        optionsSql: 'SELECT DISTINCT isp AS v FROM @ref(gold.network_regional_daily) ORDER BY v',
        optionsSource: 'gold.network_regional_daily',
      },
    ],
    refresh: 'versions',
  },
];

export function page(id: string): Page | undefined {
  return PAGES.find((p) => p.id === id);
}

export function pagePanels(id: PageId): Panel[] {
  return PANELS.filter((p) => p.page === id);
}
