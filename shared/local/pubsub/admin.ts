/**
 * Admin routes the local stack exposes for Pub/Sub (`POST <admin>/_smelter/<route>`, JSON in and out):
 *
 * - `publish`  {topic?: string, messages: [{data: base64, attributes?: {k: v}}]}  →  {messageIds: string[]}
 *     Publishes through the stack's LocalPubsub (the emulator or the embedded delivery); `topic`
 *     defaults to the events topic. At most 10,000 messages per call.
 * - `pubsub`   {}  →  LocalPubsub.status() plus {deadLetters: last 20 entries of the dead-letter record}
 * - `landed`   {messageIds: string[], eventIds?: (string|null)[], since: ISO}  →  LandedReport
 *     Reads the stack's DuckDB (only the stack process may open it) — see landed.ts.
 */
import { runtime } from '../../composition/runtime';
import { SmelterError } from '../../errors';
import type { StackContext } from '../stack';
import { landedReport, type LandedQuery } from './landed';
import type { SmelterPubsub } from './local-pubsub';

export type AdminHandler = (body: unknown) => Promise<unknown>;

export interface PublishRequest {
  topic?: string;
  messages: { data: string; attributes?: Record<string, string> }[];
}

export const MAX_ADMIN_PUBLISH = 10_000;

const bad = (message: string): SmelterError => new SmelterError('BAD_EVENT', message, { kind: 'permanent' });

export function pubsubAdminRoutes(ctx: StackContext): Record<'publish' | 'pubsub' | 'landed', AdminHandler> {
  const pubsub = () => {
    if (!ctx.pubsub)
      throw new SmelterError('PUBSUB_UNAVAILABLE', 'this stack runs without Pub/Sub', { kind: 'permanent' });
    return ctx.pubsub;
  };
  return {
    async publish(body) {
      const req = body as Partial<PublishRequest>;
      if (!req || !Array.isArray(req.messages))
        throw bad('expected {messages: [{data: base64, attributes?}]}');
      if (req.messages.length > MAX_ADMIN_PUBLISH)
        throw bad(`at most ${MAX_ADMIN_PUBLISH} messages per call`);
      const topic = req.topic ?? ctx.cfg.eventsTopic;
      if (typeof topic !== 'string') throw bad('topic must be a string');
      const ps = pubsub();
      const messageIds = await Promise.all(
        req.messages.map((m, i) => {
          if (!m || typeof m.data !== 'string') throw bad(`messages[${i}].data must be a base64 string`);
          const attrs = m.attributes ?? {};
          if (typeof attrs !== 'object' || Object.values(attrs).some((v) => typeof v !== 'string'))
            throw bad(`messages[${i}].attributes must map strings to strings`);
          return ps.publish(topic, Buffer.from(m.data, 'base64'), attrs);
        }),
      );
      return { messageIds };
    },
    async pubsub() {
      const ps = pubsub();
      const deadLetters = 'deadLetters' in ps ? (ps as SmelterPubsub).deadLetters(20) : [];
      return { ...(await ps.status()), deadLetters };
    },
    async landed(body) {
      const q = body as Partial<LandedQuery>;
      if (
        !q ||
        !Array.isArray(q.messageIds) ||
        typeof q.since !== 'string' ||
        !Number.isFinite(Date.parse(q.since))
      )
        throw bad('expected {messageIds: string[], eventIds?: (string|null)[], since: ISO time}');
      const wh = await runtime().get('localDuckDb')();
      return landedReport(wh, q as LandedQuery);
    },
  };
}
