/**
 * Generates the Terraform JSON under deploy/generated/ from the trigger manifest, the options table
 * and the contracts, so deploy never restates them by hand.
 *
 *   npx tsx deploy/scripts/generate.ts            # write deploy/generated/*.tf.json
 *   npx tsx deploy/scripts/generate.ts --check    # exit 1 if the checked-in files are stale
 *   options: --contracts DIR (default <repo>/contracts), --out DIR (default deploy/generated)
 */
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../shared/paths';
import { renderFunctions } from './render-functions';
import { renderGovernance } from './render-governance';
import { renderSources } from './render-sources';
import { renderTables } from './render-tables';

export const GENERATED_DIR = path.join(packageRoot, 'deploy', 'generated');
export const DEFAULT_CONTRACTS_DIR = path.join(packageRoot, 'contracts');

const toText = (json: unknown): string => JSON.stringify(json, null, 2) + '\n';

/** File name → content of every generated file. */
export function renderAll(opts: { contractsDir?: string } = {}): Record<string, string> {
  const contractsDir = opts.contractsDir ?? DEFAULT_CONTRACTS_DIR;
  return {
    'functions.tf.json': toText(renderFunctions()),
    'bigquery_tables.tf.json': toText(renderTables(contractsDir)),
    'sources.tf.json': toText(renderSources(contractsDir)),
    'governance.tf.json': toText(renderGovernance()),
  };
}

export interface Staleness {
  /** Files whose content differs from what the generator produces, or that are missing. */
  stale: string[];
  /** Generated-looking files in the folder that the generator no longer produces. */
  extra: string[];
}

export function checkGenerated(outDir: string, files: Record<string, string>): Staleness {
  const stale = Object.entries(files)
    .filter(([name, text]) => {
      try {
        return fs.readFileSync(path.join(outDir, name), 'utf8') !== text;
      } catch {
        return true;
      }
    })
    .map(([name]) => name);
  let present: string[] = [];
  try {
    present = fs.readdirSync(outDir).filter((f) => f.endsWith('.tf.json'));
  } catch {
    /* nothing generated yet */
  }
  return { stale, extra: present.filter((f) => !(f in files)) };
}

export function writeGenerated(outDir: string, files: Record<string, string>): string[] {
  fs.mkdirSync(outDir, { recursive: true });
  const { stale, extra } = checkGenerated(outDir, files);
  for (const name of stale) fs.writeFileSync(path.join(outDir, name), files[name] as string);
  for (const name of extra) fs.rmSync(path.join(outDir, name));
  return [...stale, ...extra];
}

function main(argv: string[]): number {
  const arg = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const outDir = path.resolve(arg('--out') ?? GENERATED_DIR);
  const contractsDir = path.resolve(arg('--contracts') ?? DEFAULT_CONTRACTS_DIR);
  const files = renderAll({ contractsDir });
  const rel = (f: string): string => path.relative(process.cwd(), path.join(outDir, f));
  if (argv.includes('--check')) {
    const { stale, extra } = checkGenerated(outDir, files);
    if (stale.length === 0 && extra.length === 0) {
      console.log(`deploy/generated is up to date (${Object.keys(files).length} files).`);
      return 0;
    }
    for (const f of stale) console.error(`stale: ${rel(f)}`);
    for (const f of extra) console.error(`no longer generated: ${rel(f)}`);
    console.error('Run `npx tsx deploy/scripts/generate.ts` and commit the result.');
    return 1;
  }
  const changed = writeGenerated(outDir, files);
  console.log(
    changed.length ? changed.map((f) => `wrote ${rel(f)}`).join('\n') : 'deploy/generated is up to date.',
  );
  return 0;
}

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 2;
  }
}
