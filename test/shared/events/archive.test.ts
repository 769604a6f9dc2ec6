import assert from 'node:assert/strict';
import { ObjectStoreArchive } from '../../../shared/adapters/events/archive-store';
import { MemoryObjectStore } from '../../../shared/adapters/storage/memory';
import { archiveFolder, planArchive } from '../../../shared/events/archive';
import type { EventContract } from '../../../shared/events/contract';
import type { AcceptedEvent } from '../../../shared/events/ports';
import { readAll } from '../../support/home';

const contract = { event_type: 'order', table: 'orders' } as EventContract;
const ev = (id: string, time: string, publishTime = time, eventId = `e-${id}`): AcceptedEvent => ({
  contract,
  row: { event_id: eventId, event_type: 'order', event_time: time },
  message: { data: '', attributes: {}, messageId: id, publishTime },
});

describe('event archive', () => {
  it('folders by type and UTC hour of event_time', () => {
    assert.equal(archiveFolder('order', '2024-05-01T13:59:59.999Z'), 'events/order/2024/05/01/13/');
  });

  it('names a batch by its messages: a retried batch overwrites the same objects, others never collide', () => {
    const a = [
      ev('1', '2024-05-01T13:00:00.000Z'),
      ev('2', '2024-05-01T13:30:00.000Z'),
      ev('3', '2024-05-01T14:00:00.000Z'),
    ];
    const plan = planArchive(a);
    assert.equal(plan.length, 2, 'one object per hour');
    assert.deepEqual(
      planArchive([...a].reverse())
        .map((o) => o.name)
        .sort(),
      plan.map((o) => o.name).sort(),
      'same messages in another order → same names',
    );
    const other = planArchive([ev('1', '2024-05-01T13:00:00.000Z')]);
    assert.ok(!plan.some((o) => o.name === other[0]?.name), 'a different batch gets a different name');
    const h13 = plan.find((o) => o.name.startsWith('events/order/2024/05/01/13/'));
    assert.equal(h13?.events, 2);
    assert.deepEqual(
      h13?.body
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { event_id: string }).event_id),
      ['e-1', 'e-2'],
    );
  });

  it('loses nothing across an emulator restart that numbers messages from "1" again', async () => {
    const store = new MemoryObjectStore();
    const archive = new ObjectStoreArchive(store, 'archive');
    const hour = '2024-05-01T13:00:00.000Z';
    // Before the restart: messages 1 and 2. After it: 1 and 2 again — other events, later publish times.
    const before = [
      ev('1', hour, '2024-05-01T13:00:01.000Z', 'a'),
      ev('2', hour, '2024-05-01T13:00:01.000Z', 'b'),
    ];
    const after = [
      ev('1', hour, '2024-05-01T13:20:00.000Z', 'c'),
      ev('2', hour, '2024-05-01T13:20:00.000Z', 'd'),
    ];
    const first = await archive.write(before);
    const second = await archive.write(after);
    assert.notDeepEqual(second, first, 'the later batch must not overwrite the earlier one');
    const ids: string[] = [];
    for await (const o of store.list('archive'))
      for (const l of (await readAll(await store.read('archive', o.name))).toString().trim().split('\n'))
        ids.push((JSON.parse(l) as { event_id: string }).event_id);
    assert.deepEqual(ids.sort(), ['a', 'b', 'c', 'd']);
    // Even the same event under a reused id and a new publish time is another object, not an overwrite.
    const again = planArchive([ev('1', hour, '2024-05-01T14:00:00.000Z', 'a'), before[1] as AcceptedEvent]);
    assert.notEqual(again[0]?.name, first[0]);
  });

  it('writes the objects and rewrites them on retry', async () => {
    const store = new MemoryObjectStore();
    const archive = new ObjectStoreArchive(store, 'archive');
    const batch = [ev('1', '2024-05-01T13:00:00.000Z'), ev('2', '2024-05-01T13:00:00.000Z')];
    const first = await archive.write(batch);
    const second = await archive.write(batch);
    assert.deepEqual(second, first);
    const names: string[] = [];
    for await (const o of store.list('archive')) names.push(o.name);
    assert.deepEqual(names, first);
  });
});
