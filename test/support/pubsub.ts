/**
 * A recording cloudevent function (`pubsubTestSink`) served by functions-framework, standing in for
 * routeEvent where a test needs to control the answer: `fail(ce, attempt)` true → the handler throws
 * (HTTP 500), so the delivery is retried.
 */
import * as ff from '@google-cloud/functions-framework';
import type { CloudEventV1 as CloudEvent } from 'cloudevents';
import type { MessagePublishedData } from '../../shared/cloudevents';
import { serveRegistered, type ServedFunction } from '../../shared/local/pubsub/serve';

export interface Sink {
  events: CloudEvent<MessagePublishedData>[];
  /** Deliveries seen per message id. */
  attempts: Map<string, number>;
  fail: (ce: CloudEvent<MessagePublishedData>, attempt: number) => boolean;
  /** Resolves when `pred` holds (polled; the mocha timeout bounds it). */
  until(pred: () => boolean): Promise<void>;
  reset(): void;
}

export const sink: Sink = {
  events: [],
  attempts: new Map(),
  fail: () => false,
  async until(pred) {
    while (!pred()) await new Promise((r) => setTimeout(r, 10));
  },
  reset() {
    this.events = [];
    this.attempts = new Map();
    this.fail = () => false;
  },
};

let registered = false;
export function serveSink(): Promise<ServedFunction> {
  if (!registered) {
    ff.cloudEvent('pubsubTestSink', async (ce: CloudEvent<MessagePublishedData>) => {
      const id = ce.data?.message.messageId ?? ce.id;
      const attempt = (sink.attempts.get(id) ?? 0) + 1;
      sink.attempts.set(id, attempt);
      sink.events.push(ce);
      if (sink.fail(ce, attempt)) {
        const e = new Error(`test sink refuses attempt ${attempt} of ${id}`);
        e.stack = `(expected) pubsubTestSink refused attempt ${attempt} of message ${id}`; // functions-framework prints it
        throw e;
      }
    });
    registered = true;
  }
  return serveRegistered('pubsubTestSink');
}

export function decoded(ce: CloudEvent<MessagePublishedData>): string {
  return Buffer.from(ce.data?.message.data ?? '', 'base64').toString('utf8');
}
