/** Shared helpers of the event router tests: sample events, CloudEvent requests, a served routeEvent. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as ff from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { createLogger, type Logger, type LogFields } from '../../shared/log';

export const PROJECT = 'smelter-test';

export function order(i: number, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    event_type: 'order',
    event_id: `ord-${i}`,
    event_time: `2024-05-01T1${i % 10}:15:00+02:00`,
    order_id: `O-${i}`,
    customer_id: `C-${i % 3}`,
    status: 'paid',
    items: [
      { product_id: 'P-1', quantity: 2, unit_price: '9.99' },
      { product_id: 'P-2', quantity: '1', unit_price: 5 },
    ],
    shipping_address: { street: '1 Main St', city: 'Lyon', postal_code: '69001', country: 'FR' },
    subtotal: '24.98',
    tax: 5,
    total_amount: 29.98,
    currency: 'EUR',
    ...over,
  };
}

export function inventory(i: number, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    event_type: 'inventory',
    event_id: `inv-${i}`,
    event_time: `2024-05-01T08:0${i % 10}:00Z`,
    product_id: `P-${i}`,
    warehouse_id: 'W-1',
    change_type: 'sale',
    quantity_change: -1,
    quantity_after: 10 + i,
    ...over,
  };
}

export function activity(i: number, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    event_type: 'user_activity',
    event_id: `act-${i}`,
    event_time: `2024-05-01T09:00:0${i % 10}.123456Z`,
    user_id: `U-${i}`,
    session_id: `S-${i}`,
    activity_type: 'page_view',
    page: '/products',
    metadata: { device: 'mobile', browser: 'Firefox', country: 'DE' },
    ...over,
  };
}

export interface Msg {
  data: string;
  messageId: string;
  attributes?: Record<string, string>;
  publishTime?: string;
}

export const b64 = (v: unknown): string =>
  Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64');

export function msg(payload: unknown, messageId: string, extra: Partial<Msg> = {}): Msg {
  return { data: b64(payload), messageId, publishTime: new Date().toISOString(), ...extra };
}

export type Mode = 'binary' | 'structured' | 'push';

const TOPIC = `projects/${PROJECT}/topics/events`;

/** An HTTP request delivering `m` the way Eventarc (binary / structured CloudEvent) or a push subscription would. */
export function request(m: Msg, mode: Mode): { path: string; headers: Record<string, string>; body: string } {
  const message = {
    data: m.data,
    messageId: m.messageId,
    publishTime: m.publishTime,
    attributes: m.attributes ?? {},
  };
  const data = { message, subscription: `projects/${PROJECT}/subscriptions/route-event` };
  const type = 'google.cloud.pubsub.topic.v1.messagePublished';
  const source = `//pubsub.googleapis.com/${TOPIC}`;
  if (mode === 'binary')
    return {
      path: '/',
      headers: {
        'content-type': 'application/json',
        'ce-id': m.messageId,
        'ce-specversion': '1.0',
        'ce-type': type,
        'ce-source': source,
        'ce-time': m.publishTime ?? new Date().toISOString(),
      },
      body: JSON.stringify(data),
    };
  if (mode === 'structured')
    return {
      path: '/',
      headers: { 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify({
        specversion: '1.0',
        id: m.messageId,
        type,
        source,
        time: m.publishTime,
        datacontenttype: 'application/json',
        data,
      }),
    };
  // The push format; functions-framework turns it into a messagePublished CloudEvent.
  return { path: `/${TOPIC}`, headers: { 'content-type': 'application/json' }, body: JSON.stringify(data) };
}

export interface Served {
  url: string;
  post(m: Msg, mode?: Mode): Promise<number>;
  close(): Promise<void>;
}

/** Registers routeEvent with functions-framework and listens on a free port. */
export async function serveRouteEvent(handler: (ce: never) => Promise<void>): Promise<Served> {
  ff.cloudEvent('routeEvent', handler as Parameters<typeof ff.cloudEvent>[1]);
  const server = getTestServer('routeEvent');
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const post = (m: Msg, mode: Mode = 'binary'): Promise<number> => {
    const r = request(m, mode);
    return new Promise((resolve, reject) => {
      const req = http.request(`${url}${r.path}`, { method: 'POST', headers: r.headers, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(r.body);
    });
  };
  return {
    url,
    post,
    close: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}

export interface CapturedLog {
  severity: string;
  message: string;
  fields: LogFields;
}

/** A JSON logger that keeps its lines (and checks each is one JSON object with severity and message). */
export function captureLogger(): { log: Logger; lines: CapturedLog[] } {
  const lines: CapturedLog[] = [];
  const log = createLogger({
    format: 'json',
    level: 'DEBUG',
    sink: (line) => {
      const { severity, message, ...fields } = JSON.parse(line) as { severity: string; message: string };
      lines.push({ severity, message, fields });
    },
  });
  return { log, lines };
}
