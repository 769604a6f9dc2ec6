/**
 * Dead-letter keys of messages that carry no Pub/Sub id or publish time (a plain HTTP POST to routeEvent,
 * a push body without `subscription`): each distinct message gets its own key, a redelivery the same
 * one — through functions-framework into the local dead-letter table and topic.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as ff from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { topicFile } from '../../shared/adapters/events/dead-letter-file';
import { closeRuntime, runtime, useRuntime } from '../../shared/composition/runtime';
import { messageFromCloudEvent, UNKNOWN_PUBLISH_TIME } from '../../shared/events/message';
import { routeEvent } from '../../functions/route-event';
import { testHome, type TestHome } from '../support/home';
import { b64, order } from '../support/events';

describe('routeEvent: keys of messages without a Pub/Sub id or publish time', function () {
  let h: TestHome;
  let server: http.Server | undefined;
  const savedEmulator = process.env.PUBSUB_EMULATOR_HOST;

  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server?.closeAllConnections?.();
    server = undefined;
    await h?.cleanup();
    if (savedEmulator !== undefined) process.env.PUBSUB_EMULATOR_HOST = savedEmulator;
  });

  async function serve(): Promise<(path: string, body: unknown) => Promise<number>> {
    delete process.env.PUBSUB_EMULATOR_HOST;
    h = await testHome();
    useRuntime({ config: h.cfg, store: h.store });
    ff.cloudEvent('routeEventKeys', routeEvent as Parameters<typeof ff.cloudEvent>[1]);
    server = getTestServer('routeEventKeys');
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return (path, body) =>
      new Promise((resolve, reject) => {
        const req = http.request(
          `${url}${path}`,
          { method: 'POST', headers: { 'content-type': 'application/json' } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify(body));
      });
  }

  const deadLetters = async (): Promise<{ message_id: string; publish_time: unknown; code: string }[]> =>
    (
      await (
        await runtime().get('localDuckDb')()
      ).query<{ message_id: string; publish_time: unknown; reasons: string }>(
        'SELECT message_id, publish_time, reasons FROM events.dead_letter ORDER BY message_id',
      )
    ).map((r) => ({
      message_id: r.message_id,
      publish_time: r.publish_time,
      code: (JSON.parse(JSON.stringify(r.reasons)) as { code: string }[])[0]?.code ?? '',
    }));

  it('gives distinct messages distinct dead letters and a redelivered one the same (plain POST and push without subscription)', async () => {
    const post = await serve();
    // Five different invalid messages, all POSTed within the same millisecond or so, twice each.
    const bodies = [
      { message: { data: b64({ ...order(1), status: 'teleported' }) } },
      { message: { data: b64({ ...order(2), status: 'teleported' }) } },
      { message: { data: b64({ ...order(2), status: 'teleported' }), attributes: { source: 'b' } } },
      { message: { data: b64('not json at all') } },
      // A push body without subscription: functions-framework does not see it as a push.
      { message: { data: b64([1, 2, 3]), attributes: { event_type: 'order' } } },
      // No message at all: an event POSTed as is.
      order(3),
      order(4),
    ];
    const first = await Promise.all(bodies.map((b) => post('/', b)));
    const again = await Promise.all(bodies.map((b) => post('/projects/p/topics/events', b)));
    assert.deepEqual([...first, ...again], Array(bodies.length * 2).fill(204));
    await runtime().get('eventRouter').flush();

    const dead = await deadLetters();
    assert.equal(dead.length, bodies.length, JSON.stringify(dead));
    assert.equal(new Set(dead.map((d) => d.message_id)).size, bodies.length);
    for (const d of dead) assert.match(d.message_id, /^sha256-[0-9a-f]{40}$/);
    assert.deepEqual(dead.map((d) => d.code).sort(), [
      'no_message',
      'no_message',
      'not_accepted',
      'not_accepted',
      'not_accepted',
      'not_json',
      'not_object',
    ]);
    // The topic carries every distinct message (it is at-least-once: a redelivery may publish again).
    const topic = fs
      .readFileSync(topicFile(h.home, h.cfg.deadLetterTopic), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { attributes: Record<string, string> }).attributes.source_message_id);
    assert.deepEqual([...new Set(topic)].sort(), dead.map((d) => d.message_id).sort());
  });

  it('derives the same key for a redelivery and never from the arrival time', () => {
    const ce = (data: unknown) => ({ specversion: '1.0', type: 't', source: 's', data }) as never;
    const body = { message: { data: b64('x'), attributes: { b: '2', a: '1' } } };
    const a = messageFromCloudEvent(ce(body), 1_000).message;
    const b = messageFromCloudEvent(
      ce({ message: { data: b64('x'), attributes: { a: '1', b: '2' } } }),
      9_999_999,
    ).message;
    assert.equal(a.messageId, b.messageId);
    assert.equal(a.publishTime, UNKNOWN_PUBLISH_TIME);
    assert.equal(b.publishTime, UNKNOWN_PUBLISH_TIME);
    // When it arrived is kept beside the key (retries are bounded by it).
    assert.equal(a.receivedAt, new Date(1_000).toISOString());
    assert.notEqual(
      messageFromCloudEvent(ce({ message: { data: b64('y') } }), 1_000).message.messageId,
      a.messageId,
    );
    // No message at all: keyed by what was sent.
    const n1 = messageFromCloudEvent(ce({ hello: 1 }), 1).message.messageId;
    assert.equal(messageFromCloudEvent(ce({ hello: 1 }), 2).message.messageId, n1);
    assert.notEqual(messageFromCloudEvent(ce({ hello: 2 }), 1).message.messageId, n1);
    // A message that has an id keeps it, and a publish time it gives is kept.
    const withId = messageFromCloudEvent(
      ce({ message: { data: b64('x'), messageId: 'm1', publishTime: '2026-01-01T00:00:00Z' } }),
    ).message;
    assert.equal(withId.messageId, 'm1');
    assert.equal(withId.publishTime, '2026-01-01T00:00:00.000Z');
    assert.equal(withId.receivedAt, undefined);
  });

  after(async () => closeRuntime());
});
