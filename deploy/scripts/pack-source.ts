/**
 * Builds the function source archive from exactly the files `gcloud functions deploy` would upload:
 * the list comes from `gcloud meta list-files-for-upload`, which applies .gcloudignore the same way a
 * deploy does, and the zip is deterministic (see zip.ts). Terraform uploads it (deploy/main.tf).
 *
 *   npx tsx deploy/scripts/pack-source.ts [--out deploy/.build/source.zip] [--root <repo>]
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../shared/paths';
import { zipFiles } from './zip';

export const DEFAULT_ARCHIVE = path.join(packageRoot, 'deploy', '.build', 'source.zip');

/** Files a deploy would upload from `root`, as gcloud lists them (sorted, forward slashes). */
export function filesForUpload(root: string, gcloud = process.env.GCLOUD ?? 'gcloud'): string[] {
  let out: string;
  try {
    out = execFileSync(gcloud, ['meta', 'list-files-for-upload', root], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 * 1024 * 1024,
      // No project or credentials are needed; keep gcloud from prompting or phoning home.
      env: {
        ...process.env,
        CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
        CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: 'true',
      },
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT')
      throw new Error(`gcloud not found (${gcloud}): install the Google Cloud CLI to package the functions`);
    throw new Error(`gcloud meta list-files-for-upload failed: ${e.stderr?.trim() || e.message}`);
  }
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => l.split(path.sep).join('/'))
    .sort();
}

/** Files a Cloud Functions Node.js build cannot do without. */
export const REQUIRED_FILES = [
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'functions/index.ts',
];

/** Prefixes that must never be uploaded: local state, installed or built output, this archive itself. */
export const FORBIDDEN_PREFIXES = [
  'node_modules/',
  'dist/',
  '.git/',
  '.smelter/',
  'deploy/.build/',
  'deploy/.terraform/',
];
/** Prefixes that should not be uploaded (harmless, but slower builds). */
export const UNWANTED_PREFIXES = ['test/', 'bench/', 'deploy/'];

export function packSource(
  root: string,
  out: string,
  gcloud?: string,
): { files: number; bytes: number; md5: string; warnings: string[] } {
  const files = filesForUpload(root, gcloud);
  const missing = REQUIRED_FILES.filter((f) => !files.includes(f));
  if (missing.length) throw new Error(`.gcloudignore drops files the build needs: ${missing.join(', ')}`);
  const forbidden = files.filter((f) => FORBIDDEN_PREFIXES.some((p) => f.startsWith(p)));
  if (forbidden.length)
    throw new Error(
      `.gcloudignore lets through ${forbidden.length} files that must not be uploaded, e.g. ${forbidden.slice(0, 3).join(', ')}`,
    );
  const warnings = UNWANTED_PREFIXES.filter((p) => files.some((f) => f.startsWith(p))).map(
    (p) => `.gcloudignore does not exclude ${p} (uploaded, but not needed by the build)`,
  );
  const zip = zipFiles(root, files);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, zip);
  return {
    files: files.length,
    bytes: zip.length,
    md5: crypto.createHash('md5').update(zip).digest('hex'),
    warnings,
  };
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const arg = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  try {
    const out = path.resolve(arg('--out') ?? DEFAULT_ARCHIVE);
    const r = packSource(path.resolve(arg('--root') ?? packageRoot), out);
    for (const w of r.warnings) console.warn(`warning: ${w}`);
    console.log(
      `packed ${r.files} files into ${path.relative(process.cwd(), out)} (${r.bytes} bytes, md5 ${r.md5})`,
    );
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 1;
  }
}
