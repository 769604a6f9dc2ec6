import type { Command } from '../command';
import { configCommand } from './config';

/** Every CLI command, in help order. Add a command: create cli/commands/<name>.ts and list it here. */
export const COMMANDS: Command[] = [configCommand];
