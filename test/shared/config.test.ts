import assert from 'node:assert/strict';
import path from 'node:path';
import {
  config,
  loadConfig,
  option,
  OPTIONS,
  optionsMarkdown,
  parsers,
  resetConfig,
  type OptionSpec,
} from '../../shared/config';
import { SmelterError } from '../../shared/errors';

const specs = Object.entries(OPTIONS) as [string, OptionSpec<unknown>][];

function defaultOf(spec: OptionSpec<unknown>): unknown {
  return typeof spec.default === 'function'
    ? (spec.default as (p: Record<string, unknown>) => unknown)({})
    : spec.default;
}

function assertConfigInvalid(fn: () => unknown, variable: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SmelterError, `expected a SmelterError, got ${String(e)}`);
    assert.equal(e.code, 'CONFIG_INVALID');
    assert.equal(e.kind, 'permanent');
    assert.equal(e.details.variable, variable);
    assert.match(e.message, new RegExp(variable));
    return true;
  });
}

describe('options table (shared/config)', () => {
  it('every option has a distinct SMELTER_* variable and a doc line', () => {
    const envs = specs.map(([, s]) => s.env);
    assert.equal(new Set(envs).size, envs.length);
    for (const [key, s] of specs) {
      assert.match(s.env, /^SMELTER_[A-Z0-9_]+$/, key);
      assert.ok(s.doc.length > 10, `${key} has no documentation`);
    }
  });

  it('every option parses its own default (the defaults pass their validators)', () => {
    for (const [key, spec] of specs) {
      const def = defaultOf(spec);
      assert.deepEqual(spec.parse(String(def), spec.env), def, `${spec.env} (${key})`);
    }
  });

  it('an empty environment yields the defaults', () => {
    const cfg = loadConfig({});
    for (const [key, spec] of specs)
      assert.deepEqual((cfg as Record<string, unknown>)[key], defaultOf(spec), spec.env);
    assert.equal(cfg.backend, 'local');
    assert.equal(cfg.rawBucket, 'raw');
    assert.equal(cfg.bronzeBucket, 'bronze');
    assert.equal(cfg.quarantineBucket, 'quarantine');
    assert.equal(cfg.home, path.resolve('.smelter'));
    assert.ok(Object.isFrozen(cfg));
  });

  it('reads values from the environment (trimmed; empty means default)', () => {
    const cfg = loadConfig({
      SMELTER_BACKEND: 'gcp',
      SMELTER_RAW_BUCKET: ' my-raw-bucket ',
      SMELTER_HOME: 'rel/home',
      SMELTER_PORT: '9000',
      SMELTER_BRONZE_BUCKET: '',
    });
    assert.equal(cfg.backend, 'gcp');
    assert.equal(cfg.rawBucket, 'my-raw-bucket');
    assert.equal(cfg.home, path.resolve('rel/home'));
    assert.equal(cfg.port, 9000);
    assert.equal(cfg.bronzeBucket, 'bronze');
  });

  it('fails fast with CONFIG_INVALID naming the variable', () => {
    const cases: Record<string, string> = {
      SMELTER_BACKEND: 'azure',
      SMELTER_MAX_OBJECT_BYTES: 'lots',
      SMELTER_PORT: '0',
      // Not an integer at all, out of range, or a fraction.
      SMELTER_LOCAL_MAX_ATTEMPTS: '1.5',
      SMELTER_DUCKDB_THREADS: '1000',
      SMELTER_RAW_BUCKET: 'Raw Bucket',
      SMELTER_EVENTS_TOPIC: '1topic',
      SMELTER_PUBSUB_EMULATOR: 'maybe',
      SMELTER_DUCKDB_MEMORY_LIMIT: 'plenty',
      SMELTER_PROJECT: 'X',
      SMELTER_LOCAL_RETRY_BASE_MS: '5',
    };
    for (const [variable, value] of Object.entries(cases))
      assertConfigInvalid(() => loadConfig({ [variable]: value }), variable);
  });

  it('the first bad variable is named even when others are valid', () => {
    assertConfigInvalid(
      () => loadConfig({ SMELTER_RAW_BUCKET: 'raw2', SMELTER_PORT: '70000', SMELTER_BACKEND: 'local' }),
      'SMELTER_PORT',
    );
  });

  it('bytes parser: plain numbers and binary units', () => {
    const bytes = parsers.bytes();
    assert.equal(bytes('1048576', 'X'), 1048576);
    assert.equal(bytes('512KB', 'X'), 512 * 1024);
    assert.equal(bytes('64MB', 'X'), 64 * 1024 ** 2);
    assert.equal(bytes('64mb', 'X'), 64 * 1024 ** 2);
    assert.equal(bytes('64MiB', 'X'), 64 * 1024 ** 2);
    assert.equal(bytes('5GB', 'X'), 5 * 1024 ** 3);
    assert.equal(bytes('1.5 GB', 'X'), 1.5 * 1024 ** 3);
    for (const bad of ['lots', '-1', '5 PB', 'MB', ''])
      assertConfigInvalid(() => bytes(bad, 'SMELTER_MAX_OBJECT_BYTES'), 'SMELTER_MAX_OBJECT_BYTES');
    assert.equal(loadConfig({ SMELTER_MAX_OBJECT_BYTES: '64MB' }).maxObjectBytes, 64 * 1024 ** 2);
    assert.equal(loadConfig({ SMELTER_MAX_UPLOAD_BYTES: '5GB' }).maxHttpUploadBytes, 5 * 1024 ** 3);
  });

  it('bool and int parsers', () => {
    const bool = parsers.bool();
    for (const t of ['1', 'true', 'YES', 'on']) assert.equal(bool(t, 'B'), true);
    for (const f of ['0', 'false', 'No', 'off']) assert.equal(bool(f, 'B'), false);
    assertConfigInvalid(() => bool('perhaps', 'B'), 'B');
    const int = parsers.int(1, 10);
    assert.equal(int('10', 'I'), 10);
    for (const bad of ['0', '11', '1e1', '', ' ', '0x5']) assertConfigInvalid(() => int(bad, 'I'), 'I');
  });

  it('overrides bypass the environment', () => {
    assert.equal(loadConfig({ SMELTER_BACKEND: 'azure' }, { backend: 'local' }).backend, 'local');
  });

  describe('config() reads once', () => {
    const keys = ['SMELTER_RAW_BUCKET', 'SMELTER_PORT'] as const;
    const saved = keys.map((k) => [k, process.env[k]] as const);
    afterEach(() => {
      for (const [k, v] of saved) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      resetConfig();
    });

    it('is cached until resetConfig()', () => {
      process.env.SMELTER_RAW_BUCKET = 'first-raw';
      resetConfig();
      const a = config();
      assert.equal(a.rawBucket, 'first-raw');
      process.env.SMELTER_RAW_BUCKET = 'second-raw';
      assert.equal(config(), a, 'same object: the environment is not read again');
      assert.equal(config().rawBucket, 'first-raw');
      resetConfig();
      assert.equal(config().rawBucket, 'second-raw');
    });

    it('an invalid value surfaces from config() and is not cached', () => {
      process.env.SMELTER_PORT = '0';
      resetConfig();
      assertConfigInvalid(() => config(), 'SMELTER_PORT');
      assertConfigInvalid(() => config(), 'SMELTER_PORT');
      process.env.SMELTER_PORT = '8123';
      assert.equal(config().port, 8123);
    });
  });

  it('optionsMarkdown lists every variable with its default', () => {
    const md = optionsMarkdown().split('\n');
    assert.equal(md[0], '| Variable | Default | Meaning |');
    assert.equal(md.length, specs.length + 2);
    for (const [, s] of specs) {
      const row = md.find((l) => l.startsWith(`| \`${s.env}\` |`));
      assert.ok(row, `${s.env} missing from the table`);
      if (typeof s.default !== 'function') assert.ok(row.includes(JSON.stringify(s.default)), row);
    }
  });

  it('reads one option through the table where the whole configuration cannot be loaded (the logger)', () => {
    assert.equal(option('logLevel', {}), 'INFO');
    assert.equal(option('logLevel', { SMELTER_LOG_LEVEL: 'DEBUG' }), 'DEBUG');
    assert.equal(option('logStderr', { SMELTER_LOG_STDERR: '1' }), true);
    assert.equal(option('logFormat', { SMELTER_LOG_FORMAT: ' text ' }), 'text');
    // Invalid: the default here (a logger cannot throw); loading the configuration reports it.
    assert.equal(option('logFormat', { SMELTER_LOG_FORMAT: 'pretty' }), 'json');
    assertConfigInvalid(() => loadConfig({ SMELTER_LOG_FORMAT: 'pretty' }), 'SMELTER_LOG_FORMAT');
    assertConfigInvalid(() => loadConfig({ SMELTER_LOG_LEVEL: 'LOUD' }), 'SMELTER_LOG_LEVEL');
  });
});
