/** The dead-letter topic adapters: the local topic file, Pub/Sub at the client boundary, and the real emulator. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sinon from 'sinon';
import { PubSub, type Message } from '@google-cloud/pubsub';
import { FileDeadLetterPublisher, topicFile } from '../../../../shared/adapters/events/dead-letter-file';
import { PubSubDeadLetterPublisher } from '../../../../shared/adapters/events/dead-letter-pubsub';
import { FsObjectStore } from '../../../../shared/adapters/storage/fs';
import { Runtime } from '../../../../shared/composition/runtime';
import { createDeadLetterPublisher } from '../../../../shared/composition/services';
import { loadConfig } from '../../../../shared/config';
import { isSmelterError } from '../../../../shared/errors';
import { discoverEmulator } from '../../../../shared/local/pubsub/discovery';
import { startEmulator, type EmulatorHandle } from '../../../../shared/local/pubsub/emulator';
import { b64, captureLogger, order } from '../../../support/events';
import { runDeadLetterContract, type TopicMessage } from './dead-letter-contract';
import { PubsubClient } from '../../../../shared/adapters/pubsub/client';

runDeadLetterContract({
  name: 'topic file',
  async open() {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-dl-'));
    const publisher = new FileDeadLetterPublisher(home, 'events-dead-letter');
    return {
      publisher,
      async received(n) {
        const read = (): TopicMessage[] =>
          fs.existsSync(publisher.file)
            ? fs
                .readFileSync(publisher.file, 'utf8')
                .split('\n')
                .filter(Boolean)
                .map(
                  (l) =>
                    JSON.parse(l) as { messageId: string; data: string; attributes: Record<string, string> },
                )
                .map((e) => ({
                  id: e.messageId,
                  data: Buffer.from(e.data, 'base64'),
                  attributes: e.attributes,
                }))
            : [];
        // publish resolved after the append: everything is there already.
        const got = read();
        assert.ok(got.length >= n, `${got.length} of ${n} messages on the topic file`);
        return got;
      },
      broken: () => {
        // Its home is a file: the topic folder cannot be created.
        const notADir = path.join(home, 'not-a-dir');
        fs.writeFileSync(notADir, '');
        return new FileDeadLetterPublisher(notADir, 'events-dead-letter');
      },
      async close() {
        await publisher.close();
        fs.rmSync(home, { recursive: true, force: true });
      },
    };
  },
});

describe('dead-letter topic adapters', () => {
  let home: string;
  const savedDetection = process.env.METADATA_SERVER_DETECTION;
  before(() => (process.env.METADATA_SERVER_DETECTION = 'none'));
  after(() => {
    if (savedDetection === undefined) delete process.env.METADATA_SERVER_DETECTION;
    else process.env.METADATA_SERVER_DETECTION = savedDetection;
  });
  beforeEach(() => (home = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-dl-'))));
  afterEach(() => {
    sinon.restore();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('chooses the topic file locally without an emulator, Pub/Sub with one or on GCP', async () => {
    const local = loadConfig({ SMELTER_HOME: home });
    assert.equal(createDeadLetterPublisher(local, {}).kind, 'file');
    const withEmulator = createDeadLetterPublisher(local, { PUBSUB_EMULATOR_HOST: '127.0.0.1:1' });
    assert.equal(withEmulator.kind, 'pubsub');
    assert.equal((withEmulator as PubSubDeadLetterPublisher).opts.createTopic, true);
    const gcp = createDeadLetterPublisher(
      loadConfig({ SMELTER_HOME: home, SMELTER_BACKEND: 'gcp', SMELTER_PROJECT: 'my-project' }),
      {},
    );
    assert.equal(gcp.kind, 'pubsub');
    assert.equal((gcp as PubSubDeadLetterPublisher).opts.createTopic, false);
    await Promise.all([withEmulator.close(), gcp.close()]);
  });

  it('appends TopicLogEntry lines to <home>/state/topics/<topic>.ndjson', async () => {
    const p = new FileDeadLetterPublisher(home, 'events-dead-letter');
    assert.equal(p.file, topicFile(home, 'events-dead-letter'));
    assert.equal(p.file, path.join(home, 'state', 'topics', 'events-dead-letter.ndjson'));
    await p.publish([{ data: Buffer.from('m0'), attributes: { n: '0' } }]);
    const [line, ...rest] = fs.readFileSync(p.file, 'utf8').split('\n').filter(Boolean);
    assert.equal(rest.length, 0);
    const e = JSON.parse(line ?? '') as Record<string, unknown>;
    assert.deepEqual(Object.keys(e).sort(), ['attributes', 'data', 'loggedAt', 'messageId', 'publishTime']);
    assert.equal(e.data, Buffer.from('m0').toString('base64'));
    assert.ok(Number.isFinite(Date.parse(String(e.publishTime))));
    await p.close();
  });

  it('maps Pub/Sub failures to transient errors and creates a missing topic on the emulator', async () => {
    const p = new PubSubDeadLetterPublisher({ projectId: 'smelter-test', topic: 'dl', createTopic: true });
    const topic = (p as unknown as { topic: { publishMessage: unknown; create: unknown } }).topic;
    const publish = sinon.stub(topic, 'publishMessage' as never) as sinon.SinonStub;
    const create = sinon.stub(topic, 'create' as never) as sinon.SinonStub;
    publish.onFirstCall().rejects(Object.assign(new Error('5 NOT_FOUND: Topic not found'), { code: 5 }));
    publish.resolves('id-1');
    create.resolves([topic]);
    await p.publish([{ data: Buffer.from('x'), attributes: { a: 'b' } }]);
    assert.equal(create.callCount, 1);
    assert.deepEqual(publish.lastCall.args[0], { data: Buffer.from('x'), attributes: { a: 'b' } });

    publish.reset();
    publish.rejects(Object.assign(new Error('14 UNAVAILABLE: connection refused'), { code: 14 }));
    await assert.rejects(
      p.publish([{ data: Buffer.from('x'), attributes: {} }]),
      (e: unknown) => isSmelterError(e, 'PUBSUB_UNAVAILABLE') && e.kind === 'transient',
    );
    sinon.restore();
    await p.close();
  });

  describe('on the Pub/Sub emulator', function () {
    this.timeout(30_000);
    let emu: EmulatorHandle | undefined;
    let topics = 0;
    const saved = process.env.PUBSUB_EMULATOR_HOST;

    before(async function () {
      const found = discoverEmulator();
      if (!found.found) this.skip(); // CI machines have it; laptops without the Cloud CLI skip
      emu = await startEmulator({
        launcher: found.launcher,
        home: fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-emu-')),
      });
      process.env.PUBSUB_EMULATOR_HOST = emu.host;
    });
    after(async () => {
      await emu?.stop();
      if (emu) fs.rmSync(path.dirname(emu.dataDir), { recursive: true, force: true });
      if (saved === undefined) delete process.env.PUBSUB_EMULATOR_HOST;
      else process.env.PUBSUB_EMULATOR_HOST = saved;
    });

    runDeadLetterContract({
      name: 'Pub/Sub (emulator)',
      async open() {
        const topic = `dl-${++topics}`;
        const client = new PubsubClient({ projectId: 'smelter-test', emulatorHost: emu!.host });
        await client.ensureTopic(topic);
        await client.ensureSubscription({ name: `${topic}-inspect`, topic });
        const publisher = new PubSubDeadLetterPublisher({ projectId: 'smelter-test', topic });
        const seen: TopicMessage[] = [];
        return {
          publisher,
          async received(n) {
            while (seen.length < n) seen.push(...(await client.pull(`${topic}-inspect`, 100, { ack: true })));
            return seen;
          },
          broken: () =>
            new PubSubDeadLetterPublisher({ projectId: 'smelter-test', topic: `${topic}-missing` }),
          async close() {
            await publisher.close().catch(() => undefined);
            await client.close();
          },
        };
      },
    });

    it('routeEvent dead-letters an invalid event to the emulator topic (published = stored + dead-lettered)', async () => {
      const cfg = loadConfig({
        SMELTER_HOME: home,
        SMELTER_PROJECT: 'smelter-test',
        SMELTER_DEAD_LETTER_TOPIC: 'dl-route',
      });
      const client = new PubSub({ projectId: 'smelter-test' });
      const [topic] = await client.createTopic('dl-route');
      const [sub] = await topic.createSubscription('dl-route-inspect');
      const received: Message[] = [];
      sub.on('message', (m: Message) => {
        m.ack();
        received.push(m);
      });
      const rt = new Runtime({ config: cfg, log: captureLogger().log, store: new FsObjectStore(home) });
      const router = rt.get('eventRouter');
      try {
        const out = await Promise.all([
          router.route({
            data: b64(order(1)),
            attributes: {},
            messageId: 'm-ok',
            publishTime: new Date().toISOString(),
          }),
          router.route({
            data: b64('not json'),
            attributes: { k: 'v' },
            messageId: 'm-bad',
            publishTime: new Date().toISOString(),
          }),
        ]);
        assert.deepEqual(
          out.map((o) => o.status),
          ['stored', 'dead-lettered'],
        );
        while (received.length < 1) await new Promise((r) => setTimeout(r, 20));
        const body = JSON.parse(received[0]?.data.toString() ?? '{}') as {
          message_id: string;
          reasons: { code: string }[];
          attributes: unknown;
        };
        assert.equal(body.message_id, 'm-bad');
        assert.equal(body.reasons[0]?.code, 'not_json');
        assert.deepEqual(body.attributes, { k: 'v' });
        assert.equal(received[0]?.attributes.source_message_id, 'm-bad');
        const wh = await rt.get('localDuckDb')();
        assert.deepEqual(
          await wh.query(
            'SELECT (SELECT count(*) FROM events.orders) AS stored, (SELECT count(*) FROM events.dead_letter) AS dead',
          ),
          [{ stored: '1', dead: '1' }],
        );
      } finally {
        await rt.close();
        await sub.close();
        await client.close();
      }
    });
  });
});
