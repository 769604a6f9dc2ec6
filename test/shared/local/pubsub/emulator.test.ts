/**
 * The emulator path, against the real Cloud SDK Pub/Sub emulator (started once for this file; skipped
 * with a visible notice only where it is not installed — CI has it): topic and push-subscription setup
 * from the manifest, publishing through @google-cloud/pubsub, the CloudEvent functions-framework builds
 * from the emulator's push, redelivery after HTTP 500, dead-lettering through the relay, idempotent
 * setup, and the emulator's process group going away on stop.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PubSub } from '@google-cloud/pubsub';
import { PubsubClient } from '../../../../shared/adapters/pubsub/client';
import { createLogger } from '../../../../shared/log';
import { discoverEmulator } from '../../../../shared/local/pubsub/discovery';
import { startEmulator, type EmulatorHandle } from '../../../../shared/local/pubsub/emulator';
import { startLocalPubsub, type SmelterPubsub } from '../../../../shared/local/pubsub/local-pubsub';
import type { ServedFunction } from '../../../../shared/local/pubsub/serve';
import { functionSpec } from '../../../../shared/manifest';
import { testHome, type TestHome } from '../../../support/home';
import { decoded, serveSink, sink } from '../../../support/pubsub';
import { runLocalPubsubContract, type LocalPubsubDriver } from './contract';
import type { Delivery } from '../../../../shared/local/pubsub/plan';

const silent = createLogger({ format: 'silent' });

describe('pubsub: Cloud SDK emulator', function () {
  this.timeout(60_000);
  let emu: EmulatorHandle | undefined;
  let emuHome: string;
  let served: ServedFunction;
  let h: TestHome;
  let ps: SmelterPubsub | undefined;
  let savedHost: string | undefined;

  before(async function () {
    const found = discoverEmulator();
    if (!found.found) {
      console.warn(
        `\n  ⚠ SKIPPING the emulator tests: ${found.reason} (searched ${found.searched.join(', ')})\n`,
      );
      this.skip();
    }
    emuHome = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-emu-'));
    emu = await startEmulator({ launcher: found.launcher, home: emuHome });
    savedHost = process.env.PUBSUB_EMULATOR_HOST;
    served = await serveSink();
  });

  after(async () => {
    await served?.close();
    if (emu) {
      await emu.stop();
      assert.throws(() => process.kill(emu!.pid, 0), 'the emulator JVM is gone');
      assert.equal(fs.existsSync(path.join(emuHome, 'pubsub', 'env.yaml')), false);
      fs.rmSync(emuHome, { recursive: true, force: true });
    }
    if (savedHost === undefined) delete process.env.PUBSUB_EMULATOR_HOST;
    else process.env.PUBSUB_EMULATOR_HOST = savedHost;
  });

  const emulatorDriver = (delivery: Delivery): LocalPubsubDriver => ({
    name: `emulator (${delivery})`,
    mode: 'emulator',
    // Every test talks to the one emulator of this file: startLocalPubsub reuses it, as it would a user's.
    env: () => ({ PUBSUB_EMULATOR_HOST: emu!.host, SMELTER_PUBSUB_EMULATOR: 'on' }),
    options: { delivery, relayBackoff: { initialMs: 10, maxMs: 20 } },
    maxAttempts: 5, // the emulator's minimum
    pullDeadLetters: (p) =>
      (p as unknown as { client: PubsubClient }).client.pull('events-dead-letter-pull', 100, { ack: true }),
    // Subscriptions and their backlogs live in the emulator, not in this process.
    durable: true,
  });
  runLocalPubsubContract(emulatorDriver('push'));
  runLocalPubsubContract(emulatorDriver('relay'));

  beforeEach(async () => {
    // Every test talks to the one emulator of this file: startLocalPubsub reuses it, as it would a user's.
    h = await testHome({ PUBSUB_EMULATOR_HOST: emu!.host, SMELTER_PUBSUB_EMULATOR: 'on' });
    sink.reset();
  });
  afterEach(async () => {
    await ps?.close();
    ps = undefined;
    await h.cleanup();
  });

  const start = (delivery: 'push' | 'relay' = 'push'): Promise<SmelterPubsub> =>
    startLocalPubsub({
      cfg: h.cfg,
      log: silent,
      endpoints: { routeEvent: served.url },
      functions: [functionSpec('routeEvent')],
      delivery,
      relayBackoff: { initialMs: 10, maxMs: 20 },
    });

  it('writes the emulator env file and answers readiness', async () => {
    const env = fs.readFileSync(path.join(emuHome, 'pubsub', 'env.yaml'), 'utf8');
    assert.equal(env.trim(), `PUBSUB_EMULATOR_HOST: ${emu!.host}`);
    const res = await fetch(`http://${emu!.host}/`);
    assert.equal((await res.text()).trim(), 'Ok');
  });

  it('creates the topics and a push subscription per trigger, with a dead-letter policy', async () => {
    ps = await start();
    assert.equal(ps.mode, 'emulator');
    assert.equal(ps.emulatorHost, emu!.host);
    assert.equal(process.env.PUBSUB_EMULATOR_HOST, emu!.host);
    const client = new PubsubClient({ projectId: h.cfg.project, emulatorHost: emu!.host });
    try {
      assert.deepEqual((await client.listTopics()).sort(), [
        'events',
        'events-dead-letter',
        'pull',
        'refresh',
      ]);
      const subs = await client.listSubscriptions();
      const trigger = subs.find((s) => s.name === 'route-event-events');
      assert.deepEqual(trigger, {
        name: 'route-event-events',
        topic: 'events',
        pushEndpoint: `${served.url}/projects/${h.cfg.project}/topics/events`,
        deadLetterTopic: 'events-dead-letter',
      });
      assert.ok(
        subs.some(
          (s) => s.name === 'events-dead-letter-pull' && s.topic === 'events-dead-letter' && !s.pushEndpoint,
        ),
      );
      const [meta] = await client.pubsub.subscription('route-event-events').getMetadata();
      assert.equal(meta.deadLetterPolicy?.maxDeliveryAttempts, 5);
      assert.equal(meta.ackDeadlineSeconds, 60, "the manifest's ackDeadlineSeconds");
    } finally {
      await client.close();
    }
  });

  it('delivers a message published with @google-cloud/pubsub as a proper messagePublished CloudEvent', async () => {
    ps = await start();
    const pubsub = new PubSub({ projectId: h.cfg.project }); // PUBSUB_EMULATOR_HOST routes it to the emulator
    try {
      const id = await pubsub
        .topic('events')
        .publishMessage({ data: Buffer.from('{"a":1}'), attributes: { event_type: 'order' } });
      await sink.until(() => sink.events.some((e) => e.data?.message.messageId === id));
      const ce = sink.events.find((e) => e.data?.message.messageId === id)!;
      assert.equal(ce.type, 'google.cloud.pubsub.topic.v1.messagePublished');
      assert.equal(ce.source, `//pubsub.googleapis.com/projects/${h.cfg.project}/topics/events`);
      assert.equal(ce.id, id);
      assert.equal(ce.data?.message.data, Buffer.from('{"a":1}').toString('base64'));
      assert.equal(decoded(ce), '{"a":1}');
      assert.deepEqual(ce.data?.message.attributes, { event_type: 'order' });
      assert.ok(Number.isFinite(Date.parse(ce.data?.message.publishTime ?? '')));
    } finally {
      await pubsub.close();
    }
  });

  it('starts its own emulator when none answers, sets PUBSUB_EMULATOR_HOST, and kills it on close', async () => {
    delete process.env.PUBSUB_EMULATOR_HOST;
    const own = await startLocalPubsub({ cfg: h.cfg, log: silent, endpoints: {}, emulator: 'auto' });
    const st = (await own.status()) as { pid: number; emulatorHost: string };
    try {
      assert.notEqual(own.emulatorHost, emu!.host);
      assert.equal(process.env.PUBSUB_EMULATOR_HOST, own.emulatorHost, 'children inherit it');
      assert.doesNotThrow(() => process.kill(st.pid, 0));
      assert.ok(fs.existsSync(path.join(h.home, 'pubsub', 'emulator.log')));
    } finally {
      await own.close();
    }
    assert.throws(() => process.kill(st.pid, 0), 'its process group is gone');
    assert.equal(process.env.PUBSUB_EMULATOR_HOST, undefined);
  });

  it('relay delivery: the trigger is a pull subscription the relay drains', async () => {
    ps = await start('relay');
    const client = new PubsubClient({ projectId: h.cfg.project, emulatorHost: emu!.host });
    try {
      const subs = await client.listSubscriptions();
      const trigger = subs.find((s) => s.name === 'route-event-events');
      assert.equal(trigger?.pushEndpoint, undefined, 'a pull subscription under the relay');
      assert.equal(trigger?.deadLetterTopic, 'events-dead-letter');
    } finally {
      await client.close();
    }
  });
});
