/**
 * The local stack (`smelter up`): serves every function of the manifest with functions-framework on
 * local ports and wires its triggers like the platform does — bucket finalize events (Eventarc
 * stand-in), Pub/Sub pushes (the real emulator or an embedded fallback) and the refresh schedule.
 *
 * It is assembled from parts; each part starts after the ones before it and stops in reverse order.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config';
import type { Logger } from '../log';
import type { FunctionSpec } from '../manifest';
import type { FsObjectStore } from '../adapters/storage/fs';
import { isRunning } from './process';

export type EntryPoint = FunctionSpec['entryPoint'];

/** Publishing on the local Pub/Sub (emulator or embedded); set by the pubsub part. */
export interface LocalPubsub {
  readonly mode: 'emulator' | 'embedded';
  /** `host:port` of the emulator when mode is `emulator`. */
  readonly emulatorHost?: string;
  publish(topic: string, data: Buffer, attributes?: Record<string, string>): Promise<string>;
  status(): Promise<Record<string, unknown>>;
}

export interface StackContext {
  cfg: Config;
  log: Logger;
  store: FsObjectStore;
  /** Base URL (`http://127.0.0.1:PORT`) of each served function. */
  endpoints: Partial<Record<EntryPoint, string>>;
  pubsub?: LocalPubsub;
  /** Extra `smelter status` sections contributed by parts. */
  statusSections: Map<string, () => Promise<unknown>>;
}

export interface StackPart {
  name: string;
  start(ctx: StackContext): Promise<void>;
  stop(): Promise<void>;
}

export interface StackInfo {
  pid: number;
  /** processStart(pid) when recorded: a reused pid is not the stack. */
  pidStart?: string;
  startedAt: string;
  endpoints: StackContext['endpoints'];
  admin?: string;
  /** URL of the dashboard the stack serves. */
  dashboard?: string;
  pubsub?: { mode: string; emulatorHost?: string };
}

export function stackInfoFile(home: string): string {
  return path.join(home, 'state', 'stack.json');
}

/**
 * The running stack of this SMELTER_HOME, if its very process is alive. The record of a stack killed
 * with -9 stays behind; its pid, dead or reused by another process, never counts as a running stack.
 */
export function runningStack(home: string): StackInfo | undefined {
  let info: StackInfo;
  try {
    info = JSON.parse(fs.readFileSync(stackInfoFile(home), 'utf8')) as StackInfo;
  } catch {
    return undefined;
  }
  const ref = { pid: info.pid, ...(info.pidStart ? { start: info.pidStart } : {}) };
  return isRunning(ref) ? info : undefined;
}

export class Stack {
  private readonly started: StackPart[] = [];
  constructor(
    readonly ctx: StackContext,
    private readonly parts: StackPart[],
  ) {}

  async start(): Promise<void> {
    for (const p of this.parts) {
      await p.start(this.ctx);
      this.started.push(p);
    }
  }

  async stop(): Promise<void> {
    for (const p of this.started.reverse()) {
      try {
        await p.stop();
      } catch (err) {
        this.ctx.log.warn(`stopping ${p.name} failed`, { err });
      }
    }
    this.started.length = 0;
  }
}
