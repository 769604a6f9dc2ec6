import type { Command } from '../command';
import { backfillCommand } from './backfill';
import { configCommand } from './config';
import { dashboardCommand } from './dashboard';
import { dropCommand } from './drop';
import { publishCommand } from './publish';
import { pullCommand } from './pull';
import { queryCommand } from './query';
import { refreshCommand } from './refresh';
import { replayCommand } from './replay';
import { statusCommand } from './status';
import { upCommand } from './up';

/** Every CLI command, in help order. Add a command: create cli/commands/<name>.ts and list it here. */
export const COMMANDS: Command[] = [
  upCommand,
  dropCommand,
  publishCommand,
  pullCommand,
  statusCommand,
  dashboardCommand,
  queryCommand,
  refreshCommand,
  backfillCommand,
  replayCommand,
  configCommand,
];
