import { EventEmitter } from 'node:events';

/** In-process progress of conversions (`smelter drop --wait` listens when it runs the stack itself). */
export const progressBus = new EventEmitter();
progressBus.setMaxListeners(100);

export interface ProgressEvent {
  uri: string;
  bytes: number;
}
