/** Source contracts: the bundled ones validate; every mistake is reported with the file and field. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isSmelterError } from '../../../shared/errors';
import {
  listSources,
  loadSourceContract,
  validateSourceContract,
  withEnvOverrides,
} from '../../../shared/pull/contract';
import { cronMatches, nextCronTime, parseCron } from '../../../shared/pull/cron';
import { packageRoot } from '../../../shared/paths';

const CONTRACTS = path.join(packageRoot, 'contracts');
const base = {
  source: 'demo',
  baseUrl: 'https://api.example.com/v1',
  endpoints: [
    {
      path: '/users',
      dataset: 'store_users',
      records: 'users',
      pagination: { type: 'offset', totalPath: 'total' },
    },
  ],
};

function problems(raw: unknown): string[] {
  try {
    validateSourceContract(raw, 'contracts/sources/demo.json');
  } catch (err) {
    assert.ok(isSmelterError(err, 'CONTRACT_INVALID'));
    assert.ok(err.message.startsWith('contracts/sources/demo.json: invalid source contract:'), err.message);
    return err.details.problems as string[];
  }
  return [];
}

describe('pull: source contracts', () => {
  it('the bundled store and network contracts validate', () => {
    assert.deepEqual(listSources(CONTRACTS), ['network', 'store']);
    const store = loadSourceContract(CONTRACTS, 'store');
    assert.deepEqual(
      store.endpoints.map((e) => e.dataset),
      ['store_users', 'store_products', 'store_carts'],
    );
    assert.equal(store.endpoints[0]?.pagination.type, 'offset');
    assert.ok(store.endpoints[0]?.omit.includes('password'));
    const net = loadSourceContract(CONTRACTS, 'network');
    assert.equal(net.auth.type, 'token');
    assert.equal(net.endpoints[0]?.window?.stepMs, 86_400_000);
    assert.equal(net.endpoints[0]?.incremental.type, 'window');
  });

  it('defaults: GET, no pagination, body is the records array, limits and HTTP policy', () => {
    const c = validateSourceContract(
      { source: 'x', baseUrl: 'http://h/', endpoints: [{ path: '/a', dataset: 'a' }] },
      'f',
    );
    assert.equal(c.baseUrl, 'http://h');
    assert.deepEqual(c.endpoints[0], {
      name: 'a',
      path: '/a',
      dataset: 'a',
      method: 'GET',
      query: {},
      records: '',
      pagination: { type: 'none' },
      incremental: { type: 'none' },
      omit: [],
    });
    assert.equal(c.limits.pagesPerRun, 10_000);
    assert.equal(c.http.maxAttempts, 6);
  });

  it('names the field of every problem', () => {
    assert.deepEqual(
      problems({
        ...base,
        baseUrl: 'ftp://x',
        schedule: '61 * * * *',
        limits: { bytesPerResponse: 'huge', pagesPerRun: 0 },
        endpoints: [
          { path: 'users', dataset: 'Users', pagination: { type: 'offset', limit: -1 } },
          {
            path: '/c',
            dataset: 'c',
            pagination: { type: 'cursor' },
            window: { step: '90s' },
            incremental: { type: 'field' },
          },
          { path: '/d', dataset: 'd', paging: {}, incremental: { type: 'window' }, omit: [3] },
        ],
      }),
      [
        'baseUrl: http or https',
        'schedule: cron minute "61" is outside 0-59',
        'limits.bytesPerResponse: a size such as 16MB (at most 1GB)',
        'limits.pagesPerRun: an integer in [1, 10000000] is required',
        'endpoints[0].dataset: a dataset name (contracts/datasets/<dataset>.json) is required',
        'endpoints[0].path: a path starting with / (no query string: use "query")',
        'endpoints[0].pagination.limit: an integer in [1, 100000] is required',
        'endpoints[1].pagination.cursorPath: the dotted path of the next cursor in the body is required',
        'endpoints[1].pagination.cursorParam: a query parameter name is required',
        'endpoints[1].window.step: a period such as "1d", "6h" or "30m" is required',
        'endpoints[1].window.start: the first window start (YYYY-MM-DD) is required',
        'endpoints[1].incremental.field: the dotted record field is required',
        'endpoints[2].paging: unknown field (expected one of name, path, dataset, method, query, records, pagination, window, incremental, omit, description)',
        'endpoints[2].incremental.type: "window" needs a window on the endpoint',
        'endpoints[2].omit[0]: a dotted record field such as "bank.cardNumber"',
      ],
    );
  });

  it('a secret in the file is refused', () => {
    assert.deepEqual(problems({ ...base, auth: { type: 'bearer', token: 'abc' } }), [
      'auth.token: secrets never go in a contract: set SMELTER_SOURCE_<NAME>_TOKEN (Secret Manager on GCP)',
      'auth.token: unknown field (expected one of type)',
    ]);
    assert.match(
      problems({ ...base, headers: { Authorization: 'Bearer abc' } })[0] ?? '',
      /headers\.Authorization: credentials never go in a contract/,
    );
    assert.match(
      problems({ ...base, baseUrl: 'https://u:p@h/' })[0] ?? '',
      /baseUrl: credentials never go in a contract/,
    );
  });

  it('the file name must match, unknown sources are clear', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-src-'));
    fs.mkdirSync(path.join(dir, 'sources'));
    fs.writeFileSync(path.join(dir, 'sources', 'b.json'), JSON.stringify({ ...base, source: 'a' }));
    fs.writeFileSync(path.join(dir, 'sources', 'bad.json'), '{');
    assert.throws(() => loadSourceContract(dir, 'b'), /b\.json: source: "a" must equal the file name "b"/);
    assert.throws(() => loadSourceContract(dir, 'bad'), /bad\.json: not valid JSON/);
    assert.throws(
      () => loadSourceContract(dir, 'nope'),
      (e: unknown) => isSmelterError(e, 'UNKNOWN_SOURCE'),
    );
    fs.rmSync(dir, { recursive: true });
  });

  it('SMELTER_SOURCE_<NAME>_URL overrides the base URL', () => {
    const c = validateSourceContract(base, 'f');
    assert.equal(
      withEnvOverrides(c, { SMELTER_SOURCE_DEMO_URL: 'http://127.0.0.1:9/' }).baseUrl,
      'http://127.0.0.1:9',
    );
    assert.throws(
      () => withEnvOverrides(c, { SMELTER_SOURCE_DEMO_URL: 'file:///etc' }),
      /SMELTER_SOURCE_DEMO_URL/,
    );
  });

  it('cron: UTC, steps, ranges, lists, day-of-month OR day-of-week', () => {
    const c = parseCron('30 6 * * *');
    assert.ok(cronMatches(c, new Date('2026-11-10T06:30:00Z')));
    assert.equal(
      nextCronTime(c, new Date('2026-11-10T06:30:00Z'))?.toISOString(),
      '2026-11-11T06:30:00.000Z',
    );
    assert.equal(
      nextCronTime(parseCron('0 */6 * * *'), new Date('2026-11-10T07:00:00Z'))?.toISOString(),
      '2026-11-10T12:00:00.000Z',
    );
    assert.equal(
      nextCronTime(parseCron('0 0 1 * 1'), new Date('2026-11-27T00:00:00Z'))?.toISOString(),
      '2026-11-30T00:00:00.000Z',
    );
    assert.equal(
      nextCronTime(parseCron('15 9 29 2 *'), new Date('2026-03-01T00:00:00Z'))?.toISOString(),
      '2028-02-29T09:15:00.000Z',
    );
    assert.throws(() => parseCron('* * *'), /five-field/);
  });
});
