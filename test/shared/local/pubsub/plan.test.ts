/** The local Pub/Sub layout derived from the trigger manifest. */
import assert from 'node:assert/strict';
import { loadConfig } from '../../../../shared/config';
import { planPubsub } from '../../../../shared/local/pubsub/plan';

describe('pubsub: setup plan from the manifest', () => {
  const cfg = loadConfig({ SMELTER_PROJECT: 'demo-proj', SMELTER_LOCAL_MAX_ATTEMPTS: '3' });
  const endpoints = { routeEvent: 'http://127.0.0.1:8082', loadWarehouse: 'http://127.0.0.1:8083/' };

  it('subscribes every served pubsub trigger at /projects/P/topics/T with a dead-letter policy', () => {
    const plan = planPubsub(cfg, endpoints, { mode: 'embedded' });
    assert.deepEqual(
      plan.topics.map((t) => [t.name, t.log]),
      [
        ['events', false],
        ['events-dead-letter', true],
        ['refresh', false],
        ['pull', false],
      ],
    );
    const trig = plan.subscriptions.filter((s) => s.role === 'trigger');
    assert.deepEqual(
      trig.map((s) => [
        s.name,
        s.topic,
        s.pushEndpoint,
        s.deadLetter?.maxDeliveryAttempts,
        s.ackDeadlineSeconds,
      ]),
      [
        ['route-event-events', 'events', 'http://127.0.0.1:8082/projects/demo-proj/topics/events', 3, 60],
        [
          'load-warehouse-refresh',
          'refresh',
          'http://127.0.0.1:8083/projects/demo-proj/topics/refresh',
          3,
          600,
        ],
      ],
    );
    assert.ok(
      plan.subscriptions.some(
        (s) => s.role === 'dead-letter-pull' && s.topic === 'events-dead-letter' && !s.pushEndpoint,
      ),
    );
    assert.ok(
      !plan.subscriptions.some((s) => s.role === 'dead-letter-log'),
      'embedded mode records dead letters itself',
    );
  });

  it('on the emulator: raises attempts to its minimum of 5, relays when asked, records dead letters', () => {
    const plan = planPubsub(cfg, endpoints, { mode: 'emulator', delivery: 'relay' });
    assert.equal(plan.maxDeliveryAttempts, 5);
    const s = plan.subscriptions.find((x) => x.name === 'route-event-events');
    assert.equal(s?.pushEndpoint, undefined);
    assert.equal(s?.relayTo, 'http://127.0.0.1:8082/projects/demo-proj/topics/events');
    assert.equal(s?.concurrency, 80);
    assert.ok(plan.subscriptions.some((x) => x.role === 'dead-letter-log'));
  });

  it('skips functions that are not served', () => {
    const plan = planPubsub(cfg, { routeEvent: 'http://h:1' }, { mode: 'embedded' });
    assert.deepEqual(plan.skipped, ['loadWarehouse', 'pullSource']);
    assert.equal(plan.subscriptions.filter((s) => s.role === 'trigger').length, 1);
  });
});
