/**
 * The `pubsub` part of the local stack. Start it after the functions part (it needs
 * `ctx.endpoints` to subscribe them); it sets `ctx.pubsub` and a `pubsub` status section.
 */
import type { StackContext, StackPart } from '../stack';
import { startLocalPubsub, type SmelterPubsub, type StartLocalPubsubOptions } from './local-pubsub';

export type PubsubPartOptions = Omit<StartLocalPubsubOptions, 'cfg' | 'log' | 'endpoints'>;

export interface PubsubPart extends StackPart {
  /** Set once started. */
  readonly pubsub: SmelterPubsub | undefined;
}

export function pubsubPart(opts: PubsubPartOptions = {}): PubsubPart {
  let ps: SmelterPubsub | undefined;
  let ctxRef: StackContext | undefined;
  return {
    name: 'pubsub',
    get pubsub() {
      return ps;
    },
    async start(ctx) {
      ps = await startLocalPubsub({
        ...opts,
        cfg: ctx.cfg,
        log: ctx.log.child({ part: 'pubsub' }),
        endpoints: ctx.endpoints,
      });
      ctxRef = ctx;
      ctx.pubsub = ps;
      for (const fn of ps.plan.skipped)
        ctx.log.warn(`Pub/Sub: ${fn} is not served, its topic has no subscriber`);
      const started = ps;
      ctx.statusSections.set('pubsub', () => started.status());
    },
    async stop() {
      const p = ps;
      ps = undefined;
      if (ctxRef) {
        if (ctxRef.pubsub === p) delete ctxRef.pubsub;
        ctxRef.statusSections.delete('pubsub');
      }
      await p?.close();
    },
  };
}
