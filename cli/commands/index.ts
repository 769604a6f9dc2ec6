import type { Command } from '../command';
import { configCommand } from './config';
import { dropCommand } from './drop';
import { statusCommand } from './status';
import { upCommand } from './up';

/** Every CLI command, in help order. Add a command: create cli/commands/<name>.ts and list it here. */
export const COMMANDS: Command[] = [upCommand, dropCommand, statusCommand, configCommand];
