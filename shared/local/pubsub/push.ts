/**
 * Pub/Sub push delivery as the platform (and the emulator) does it: POST the push JSON
 * `{message:{data,attributes,messageId,publishTime},subscription}` to the endpoint; any 2xx acknowledges,
 * anything else (or no answer within the ack deadline) means "redeliver later".
 *
 * Endpoints are `<function URL>/projects/<P>/topics/<T>`: functions-framework turns such a request into
 * a `google.cloud.pubsub.topic.v1.messagePublished` CloudEvent whose source is the topic from the path.
 */
import http from 'node:http';

export interface PushMessage {
  id: string;
  data: Buffer;
  attributes: Record<string, string>;
  publishTime: string;
}

export interface PushResult {
  ok: boolean;
  /** HTTP status, 0 when no response (refused, timed out). */
  status: number;
  error?: string;
}

export function pushEndpoint(functionUrl: string, project: string, topic: string): string {
  return `${functionUrl.replace(/\/+$/, '')}/projects/${project}/topics/${topic}`;
}

export function pushBody(m: PushMessage, subscriptionPath: string, deliveryAttempt?: number): string {
  return JSON.stringify({
    message: {
      data: m.data.toString('base64'),
      attributes: m.attributes,
      messageId: m.id,
      message_id: m.id,
      publishTime: m.publishTime,
      publish_time: m.publishTime,
    },
    subscription: subscriptionPath,
    ...(deliveryAttempt ? { deliveryAttempt } : {}),
  });
}

// Keep-alive: a fresh TCP connection per message would cap local throughput.
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export function postPush(endpoint: string, body: string, timeoutMs: number): Promise<PushResult> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: PushResult): void => {
      if (!done) {
        done = true;
        resolve(r);
      }
    };
    const req = http.request(
      endpoint,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: timeoutMs,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        res.on('end', () => finish({ ok: status >= 200 && status < 300, status }));
        res.on('error', (e) => finish({ ok: false, status, error: e.message }));
      },
    );
    req.on('timeout', () => {
      req.destroy();
      finish({ ok: false, status: 0, error: `no answer within the ack deadline (${timeoutMs} ms)` });
    });
    req.on('error', (e) => finish({ ok: false, status: 0, error: e.message }));
    req.end(body);
  });
}

/** Retry delay after `attempt` failed deliveries: initial × 2^(attempt-1), capped. */
export function backoffMs(attempt: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));
}
