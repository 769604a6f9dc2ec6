import { config, optionsMarkdown, OPTIONS } from '../../shared/config';
import type { Command } from '../command';

export const configCommand: Command = {
  name: 'config',
  summary: 'Show the effective configuration (or the options table with --markdown)',
  usage: 'config [--markdown] [--json]',
  async run({ flags, out }) {
    if (flags.markdown) {
      out(optionsMarkdown());
      return 0;
    }
    const cfg = config();
    if (flags.json) {
      out(JSON.stringify(cfg));
      return 0;
    }
    for (const [k, spec] of Object.entries(OPTIONS))
      out(`${spec.env.padEnd(32)} ${JSON.stringify((cfg as Record<string, unknown>)[k])}`);
    return 0;
  },
};
