/**
 * The Eventarc stand-in end to end: the local stack started in-process (functions served by
 * functions-framework, storage triggers polling every 100 ms), files put into the raw bucket folder
 * with plain `fs` as a file manager would, a recording proxy in front of rawToBronze.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startLocalStack, stackExtensions, type LocalStack } from '../../../cli/local/stack';
import { statusCommand } from '../../../cli/commands/status';
import { bronzeNames, type BronzeManifest } from '../../../shared/ingest/bronze';
import { createLogger } from '../../../shared/log';
import { readObjectJson } from '../../../shared/storage/object-store';
import { readAll, testHome, type TestHome } from '../../support/home';
import { rainfallCsv, sleep, SpyPart, waitFor } from '../../support/local';

const log = createLogger({ format: 'silent' });

describe('local stack: storage triggers (Eventarc stand-in)', function () {
  this.timeout(30_000);
  let h: TestHome;
  let stack: LocalStack | undefined;
  let spies: SpyPart[];
  const addSpy = (): SpyPart => {
    const s = new SpyPart();
    spies.push(s);
    return s;
  };

  async function start(): Promise<LocalStack> {
    stack = await startLocalStack({ cfg: h.cfg, log, ephemeral: true, pollMs: 100 });
    return stack;
  }
  async function stop(): Promise<void> {
    const s = stack;
    stack = undefined;
    await s?.stop();
  }
  const rawPath = (name: string): string => path.join(h.home, 'buckets', h.cfg.rawBucket, ...name.split('/'));
  async function putByHand(name: string, content: string): Promise<{ generation: string; size: number }> {
    await fsp.mkdir(path.dirname(rawPath(name)), { recursive: true });
    await fsp.writeFile(rawPath(name), content);
    const meta = await h.store.stat(h.cfg.rawBucket, name);
    assert.ok(meta);
    return meta;
  }
  async function manifestOf(name: string, generation: string): Promise<BronzeManifest | undefined> {
    const n = bronzeNames({ bucket: h.cfg.rawBucket, name, generation });
    if (!(await h.store.stat(h.cfg.bronzeBucket, n.manifest))) return undefined;
    return readObjectJson<BronzeManifest>(h.store, h.cfg.bronzeBucket, n.manifest);
  }
  async function bronzeParquetFor(name: string): Promise<string[]> {
    const base = path.basename(name).replace(/\.csv$/, '');
    const out: string[] = [];
    for await (const m of h.store.list(h.cfg.bronzeBucket, 'rainfall/'))
      if (m.name.endsWith('.parquet') && path.basename(m.name).startsWith(base + '-')) out.push(m.name);
    return out;
  }

  // No SQL models: loadWarehouse (subscribed to the bronze bucket) only loads Bronze, which keeps this fast.
  let noModels: string;
  const env = (extra: Record<string, string> = {}): Record<string, string> => ({
    SMELTER_LOCAL_RETRY_BASE_MS: '10',
    SMELTER_MODELS_DIR: noModels,
    ...extra,
  });
  before(() => {
    noModels = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-no-models-'));
  });
  after(() => fs.rmSync(noModels, { recursive: true, force: true }));

  beforeEach(async () => {
    h = await testHome(env());
    spies = [];
    stackExtensions.parts.push(addSpy);
  });
  afterEach(async () => {
    await stop();
    stackExtensions.parts.splice(stackExtensions.parts.indexOf(addSpy), 1);
    // loadWarehouse (subscribed to the bronze bucket) opened this home's DuckDB file in this process:
    // cleanup closes the runtime that holds it.
    await h.cleanup();
  });

  it('delivers one finalized CloudEvent, in the Eventarc shape, for a file copied in slowly', async () => {
    const s = await start();
    const spy = spies[0] as SpyPart;
    const name = 'rainfall/slow.csv';
    const csv = rainfallCsv(120);
    // A file manager writes progressively: 6 chunks, 150 ms apart (less than the 400 ms stability window).
    await fsp.mkdir(path.dirname(rawPath(name)), { recursive: true });
    const fh = await fsp.open(rawPath(name), 'w');
    const step = Math.ceil(csv.length / 6);
    for (let off = 0; off < csv.length; off += step) {
      await fh.write(csv.slice(off, off + step));
      await fh.sync();
      if (off + step < csv.length) await sleep(150);
    }
    await fh.close();
    const final = await h.store.stat(h.cfg.rawBucket, name);
    assert.ok(final);

    const manifest = await waitFor('Bronze manifest', () => manifestOf(name, final.generation));
    await s.triggers.idle();

    const reqs = spy.endpoint.forObject(name);
    assert.equal(reqs.length, 1, 'exactly one delivery, for the complete file');
    const r = reqs[0]!;
    assert.equal(r.method, 'POST');
    assert.equal(r.headers['ce-specversion'], '1.0');
    assert.equal(r.headers['ce-type'], 'google.cloud.storage.object.v1.finalized');
    assert.equal(r.headers['ce-source'], `//storage.googleapis.com/projects/_/buckets/${h.cfg.rawBucket}`);
    assert.equal(r.headers['ce-subject'], `objects/${name}`);
    assert.ok(r.headers['ce-id']);
    assert.ok(!Number.isNaN(Date.parse(String(r.headers['ce-time']))));
    assert.match(String(r.headers['content-type']), /^application\/json/);
    const data = JSON.parse(r.body) as Record<string, unknown>;
    assert.equal(data.bucket, h.cfg.rawBucket);
    assert.equal(data.name, name);
    assert.equal(data.generation, final.generation);
    assert.equal(typeof data.generation, 'string');
    assert.equal(data.size, String(Buffer.byteLength(csv)));
    assert.equal(data.contentType, 'text/csv');
    assert.ok(!Number.isNaN(Date.parse(String(data.timeCreated))));
    assert.equal(data.kind, 'storage#object');

    assert.equal(manifest.rows, 120);
    assert.equal(manifest.rejected, 0);
    assert.equal(manifest.source.generation, final.generation);
    assert.ok(await h.store.stat(h.cfg.bronzeBucket, manifest.output.name), 'Parquet beside the manifest');
    assert.deepEqual(await bronzeParquetFor(name), [manifest.output.name]);
    assert.equal(s.triggers.stats()[`${h.cfg.rawBucket} → ${spy.endpoint.url}`]?.delivered, 1);
  });

  it('objects written through the driver are delivered at once; a new generation is a new event', async () => {
    const s = await start();
    const spy = spies[0] as SpyPart;
    const name = 'rainfall/driver.csv';
    const g1 = await h.store.write(h.cfg.rawBucket, name, rainfallCsv(3), { contentType: 'text/csv' });
    await waitFor('first generation', () => manifestOf(name, g1.generation));
    const g2 = await h.store.write(h.cfg.rawBucket, name, rainfallCsv(5), { contentType: 'text/csv' });
    await waitFor('second generation', () => manifestOf(name, g2.generation));
    await s.triggers.idle();
    const gens = spy.endpoint
      .forObject(name)
      .map((r) => (JSON.parse(r.body) as { generation: string }).generation);
    assert.deepEqual(gens, [g1.generation, g2.generation]);
    assert.equal((await manifestOf(name, g2.generation))?.rows, 5);
  });

  it('does not deliver hidden or temporary files; a .part renamed into place is delivered once', async () => {
    const s = await start();
    const spy = spies[0] as SpyPart;
    const csv = rainfallCsv(2);
    for (const n of [
      'rainfall/.foo',
      'rainfall/.hidden.csv',
      'rainfall/.staging/inner.csv',
      'rainfall/x.part',
      'rainfall/y.crdownload',
      'rainfall/z~',
      'rainfall/w.tmp',
      'rainfall/v.csv.swp',
    ])
      await putByHand(n, csv);
    // A download that finishes with a rename, then a sentinel: once both are converted, the scan has
    // long passed the ignored files.
    await putByHand('rainfall/renamed.csv.part', csv);
    await sleep(250);
    await fsp.rename(rawPath('rainfall/renamed.csv.part'), rawPath('rainfall/renamed.csv'));
    const renamed = await h.store.stat(h.cfg.rawBucket, 'rainfall/renamed.csv');
    const sentinel = await putByHand('rainfall/sentinel.csv', csv);
    await waitFor('sentinel converted', () => manifestOf('rainfall/sentinel.csv', sentinel.generation));
    await waitFor('renamed converted', () => manifestOf('rainfall/renamed.csv', renamed!.generation));
    await s.triggers.idle();

    const subjects = spy.endpoint.requests.map((r) => r.headers['ce-subject']).sort();
    assert.deepEqual(subjects, ['objects/rainfall/renamed.csv', 'objects/rainfall/sentinel.csv']);
    // Nothing was quarantined for the ignored files either.
    const quarantined: string[] = [];
    for await (const m of h.store.list(h.cfg.quarantineBucket)) quarantined.push(m.name);
    assert.deepEqual(quarantined, []);
  });

  it('quarantines, with the reason, files whose names no object name can address, and status counts them', async () => {
    const s = await start();
    const spy = spies[0] as SpyPart;
    const csv = rainfallCsv(2);
    const dir = Buffer.from(rawPath('rainfall'));
    await fsp.mkdir(rawPath('rainfall'), { recursive: true });
    const odd: [Buffer, RegExp][] = [
      [Buffer.from('new\nline.csv'), /control character/],
      [Buffer.from('tab\there.csv'), /control character/],
      [Buffer.from([0x62, 0x61, 0x64, 0xff, 0x2e, 0x63, 0x73, 0x76]), /not valid UTF-8/], // bad\xff.csv
      [Buffer.from('back\\slash.csv'), /backslash/],
    ];
    for (const [name] of odd) await fsp.writeFile(Buffer.concat([dir, Buffer.from('/'), name]), csv);
    const sentinel = await putByHand('rainfall/sentinel.csv', csv);
    await waitFor('sentinel converted', () => manifestOf('rainfall/sentinel.csv', sentinel.generation));
    await s.triggers.idle();

    interface Rec {
      source: { bucket: string; name: string; nameBase64: string; uri: string };
      error: { code: string; message: string };
      copy: string;
    }
    const records: Rec[] = [];
    for await (const m of h.store.list(h.cfg.quarantineBucket, '_failed/_unaddressable/'))
      if (m.name.endsWith('/error.json'))
        records.push((await readObjectJson<Rec>(h.store, h.cfg.quarantineBucket, m.name)) as Rec);
    assert.equal(records.length, odd.length, 'one quarantine record per odd file');
    for (const [name, why] of odd) {
      const r = records.find((x) =>
        Buffer.from(x.source.nameBase64, 'base64').equals(Buffer.concat([Buffer.from('rainfall/'), name])),
      );
      assert.ok(r, `record for ${JSON.stringify(name.toString())}`);
      assert.equal(r.source.bucket, h.cfg.rawBucket);
      assert.equal(r.error.code, 'INVALID_OBJECT_NAME');
      assert.match(r.error.message, why);
      const copy = r.copy.replace(`gs://${h.cfg.quarantineBucket}/`, '');
      assert.equal((await readAll(await h.store.read(h.cfg.quarantineBucket, copy))).toString(), csv);
    }
    // Never delivered; only the sentinel was.
    assert.deepEqual(
      spy.endpoint.requests.map((r) => r.headers['ce-subject']),
      ['objects/rainfall/sentinel.csv'],
    );
    // A restart does not quarantine them again.
    await stop();
    await start();
    await stack?.triggers.idle();
    let n = 0;
    for await (const m of h.store.list(h.cfg.quarantineBucket, '_failed/_unaddressable/'))
      if (m.name.endsWith('/error.json')) n++;
    assert.equal(n, odd.length);

    const lines: string[] = [];
    assert.equal(
      await statusCommand.run({
        args: [],
        flags: { json: true },
        out: (l) => lines.push(l),
        err: () => undefined,
      }),
      0,
    );
    const report = JSON.parse(lines.join('\n')) as { quarantine: { failedFiles: { code: string }[] } };
    assert.equal(
      report.quarantine.failedFiles.filter((f) => f.code === 'INVALID_OBJECT_NAME').length,
      odd.length,
    );
  });

  it('the stack sweeps temp files a killed run left behind when it starts', async () => {
    const gone = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => gone.on('exit', r));
    const stale = path.join(h.home, 'tmp', 'objects', `${gone.pid}-0123456789ab-1.part`);
    await fsp.mkdir(path.dirname(stale), { recursive: true });
    await fsp.writeFile(stale, 'half an object');
    await start();
    assert.equal(fs.existsSync(stale), false);
  });

  it('after a restart, delivers what arrived while down and does not redeliver old generations', async () => {
    await start();
    const before = await h.store.write(h.cfg.rawBucket, 'rainfall/before.csv', rainfallCsv(4), {
      contentType: 'text/csv',
    });
    await waitFor('first file converted', () => manifestOf('rainfall/before.csv', before.generation));
    await stack?.triggers.idle();
    await stop();
    assert.equal(spies[0]?.endpoint.forObject('rainfall/before.csv').length, 1);

    // While the stack is down: a hand-copied file and a driver write.
    const down1 = await putByHand('rainfall/while-down.csv', rainfallCsv(6));
    const down2 = await h.store.write(h.cfg.rawBucket, 'rainfall/while-down-2.csv', rainfallCsv(7));

    const s2 = await start();
    const spy2 = spies[1] as SpyPart;
    await waitFor('hand copy converted', () => manifestOf('rainfall/while-down.csv', down1.generation));
    await waitFor('driver write converted', () => manifestOf('rainfall/while-down-2.csv', down2.generation));
    await s2.triggers.idle();
    assert.deepEqual(spy2.endpoint.requests.map((r) => r.headers['ce-subject']).sort(), [
      'objects/rainfall/while-down-2.csv',
      'objects/rainfall/while-down.csv',
    ]);
    assert.equal((await bronzeParquetFor('rainfall/before.csv')).length, 1);
  });

  it('an event still being retried when the stack stops is delivered after the restart (at least once)', async () => {
    // A long first backoff: the retry is still pending when the stack stops.
    await h.cleanup();
    h = await testHome(env({ SMELTER_LOCAL_RETRY_BASE_MS: '60000' }));
    const s = await start();
    const spy = spies[0] as SpyPart;
    spy.failNext = 1;
    const name = 'rainfall/unlucky.csv';
    const m = await h.store.write(h.cfg.rawBucket, name, rainfallCsv(3), { contentType: 'text/csv' });
    await waitFor('first (failed) attempt', () => spy.endpoint.forObject(name).length === 1);
    await waitFor('retry scheduled', () =>
      Object.values(s.triggers.stats()).some((q) => q.retries === 1 && q.pending === 1),
    );
    await stop();
    assert.equal(await manifestOf(name, m.generation), undefined);

    const s2 = await start();
    await waitFor('delivered after the restart', () => manifestOf(name, m.generation));
    await s2.triggers.idle();
    assert.equal(spies[1]?.endpoint.forObject(name).length, 1);
  });

  it('the ledger of delivered generations survives in <home>/state/eventarc', async () => {
    const s = await start();
    const m = await h.store.write(h.cfg.rawBucket, 'rainfall/ledger.csv', rainfallCsv(2));
    await waitFor('converted', () => manifestOf('rainfall/ledger.csv', m.generation));
    await s.triggers.idle();
    const ledger = fs.readFileSync(path.join(h.home, 'state', 'eventarc', 'delivered.ndjson'), 'utf8');
    assert.ok(ledger.split('\n').includes(`${h.cfg.rawBucket}\0rainfall/ledger.csv\0${m.generation}`));
  });
});
