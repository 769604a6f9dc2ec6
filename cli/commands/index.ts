/* eslint-disable @typescript-eslint/no-require-imports */
import type { Command } from '../command';

/**
 * Every CLI command, in help order, each loaded only when used: a command does not pay for the
 * modules of the others (`drop` starts copying its file sooner). Add a command: create
 * cli/commands/<name>.ts and list it here under its name.
 */
export const COMMANDS: Record<string, () => Command> = {
  up: () => (require('./up') as typeof import('./up')).upCommand,
  drop: () => (require('./drop') as typeof import('./drop')).dropCommand,
  publish: () => (require('./publish') as typeof import('./publish')).publishCommand,
  pull: () => (require('./pull') as typeof import('./pull')).pullCommand,
  status: () => (require('./status') as typeof import('./status')).statusCommand,
  dashboard: () => (require('./dashboard') as typeof import('./dashboard')).dashboardCommand,
  query: () => (require('./query') as typeof import('./query')).queryCommand,
  refresh: () => (require('./refresh') as typeof import('./refresh')).refreshCommand,
  backfill: () => (require('./backfill') as typeof import('./backfill')).backfillCommand,
  replay: () => (require('./replay') as typeof import('./replay')).replayCommand,
  config: () => (require('./config') as typeof import('./config')).configCommand,
};

/** The command of this name, or undefined (only its module is loaded). */
export function command(name: string): Command | undefined {
  return Object.hasOwn(COMMANDS, name) ? COMMANDS[name]?.() : undefined;
}

/** Every command (loads them all: for the help). */
export function allCommands(): Command[] {
  return Object.values(COMMANDS).map((load) => load());
}
