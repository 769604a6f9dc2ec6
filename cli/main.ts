/**
 * `smelter` — the local stack and operator CLI. Human-readable output by default, `--json` where a
 * command offers it.
 */
import { parseArgv, type Command } from './command';
import { allCommands, command } from './commands';

const BOOLEAN_FLAGS = new Set([
  'json',
  'wait',
  'infer',
  'help',
  'no-sample',
  'no-demo-api',
  'quiet',
  'markdown',
]);

function help(out: (s: string) => void): void {
  out('smelter — raw files and events to a Bronze/Silver/Gold lakehouse\n');
  out('Usage: smelter <command> [options]\n');
  const commands = allCommands();
  const w = Math.max(...commands.map((c) => c.name.length));
  for (const c of commands) out(`  ${c.name.padEnd(w)}  ${c.summary}`);
  out('\nRun `smelter <command> --help` for its options.');
}

export async function main(argv: string[]): Promise<number> {
  // `smelter status | head` must not crash on a closed pipe.
  for (const s of [process.stdout, process.stderr])
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(0);
    });
  process.env.METADATA_SERVER_DETECTION ??= 'none';
  process.env.SMELTER_LOG_FORMAT ??= 'text';
  const [name, ...rest] = argv;
  const out = (s: string): void => void process.stdout.write(s + '\n');
  const err = (s: string): void => void process.stderr.write(s + '\n');
  if (!name || name === '--help' || name === 'help' || name === '-h') {
    help(out);
    return 0;
  }
  const cmd: Command | undefined = command(name);
  if (!cmd) {
    err(`smelter: unknown command "${name}"\n`);
    help(err);
    return 2;
  }
  const { args, flags } = parseArgv(rest, BOOLEAN_FLAGS);
  if (flags.help) {
    out(`Usage: smelter ${cmd.usage}\n\n${cmd.summary}`);
    return 0;
  }
  try {
    return await cmd.run({ args, flags, out, err });
  } catch (e) {
    const x = e as Error & { code?: string };
    err(`smelter ${name}: ${x.code ? `[${x.code}] ` : ''}${x.message}`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(String(e) + '\n');
      process.exitCode = 1;
    },
  );
}
