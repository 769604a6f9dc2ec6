/**
 * Finds the Cloud SDK's Pub/Sub emulator launcher without assuming one install path: the SDK may come
 * from apt (/usr/lib/google-cloud-sdk), a tarball (~/google-cloud-sdk), snap, Homebrew or a custom
 * CLOUDSDK_ROOT_DIR. The launcher is a shell script that execs Java, so Java must be present too.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const LAUNCHER = path.join('platform', 'pubsub-emulator', 'bin', 'cloud-pubsub-emulator');

export type EmulatorDiscovery =
  | { found: true; launcher: string; sdkRoot: string; via: string; java: string }
  | { found: false; reason: string; searched: string[] };

/** Seams for tests: the environment, the filesystem and `gcloud info`. */
export interface DiscoveryDeps {
  env: NodeJS.ProcessEnv;
  isFile(p: string): boolean;
  realpath(p: string): string;
  /** `gcloud info --format=value(installation.sdk_root)`; undefined when it fails. */
  gcloudSdkRoot(gcloud: string): string | undefined;
  homedir(): string;
}

const defaultDeps: DiscoveryDeps = {
  env: process.env,
  isFile: (p) => {
    try {
      return fs.statSync(p).isFile();
    } catch {
      return false;
    }
  },
  realpath: (p) => fs.realpathSync(p),
  gcloudSdkRoot: (gcloud) => {
    try {
      const out = execFileSync(gcloud, ['info', '--format=value(installation.sdk_root)'], {
        encoding: 'utf8',
        timeout: 15_000,
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
      return out || undefined;
    } catch {
      return undefined;
    }
  },
  homedir: () => os.homedir(),
};

/** First executable named `name` on PATH. */
export function which(
  name: string,
  deps: Pick<DiscoveryDeps, 'env' | 'isFile'> = defaultDeps,
): string | undefined {
  for (const dir of (deps.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, name);
    if (deps.isFile(p)) return p;
  }
  return undefined;
}

/** Java as the launcher will find it: JAVA_HOME first, then PATH. */
export function findJava(deps: Pick<DiscoveryDeps, 'env' | 'isFile'> = defaultDeps): string | undefined {
  const home = deps.env.JAVA_HOME;
  if (home) {
    const p = path.join(home, 'bin', 'java');
    if (deps.isFile(p)) return p;
  }
  return which('java', deps);
}

export function discoverEmulator(over: Partial<DiscoveryDeps> = {}): EmulatorDiscovery {
  const deps = { ...defaultDeps, ...over };
  const searched: string[] = [];
  const candidates: { root: string; via: string }[] = [];
  if (deps.env.CLOUDSDK_ROOT_DIR)
    candidates.push({ root: deps.env.CLOUDSDK_ROOT_DIR, via: 'CLOUDSDK_ROOT_DIR' });
  const gcloud = which('gcloud', deps);
  if (gcloud) {
    // <sdk>/bin/gcloud, usually reached through a symlink such as /usr/bin/gcloud.
    try {
      candidates.push({
        root: path.dirname(path.dirname(deps.realpath(gcloud))),
        via: `gcloud on PATH (${gcloud})`,
      });
    } catch {
      /* dangling link: try the other ways */
    }
  }
  for (const root of [
    '/usr/lib/google-cloud-sdk',
    '/usr/share/google-cloud-sdk',
    '/opt/google-cloud-sdk',
    '/snap/google-cloud-cli/current',
    '/snap/google-cloud-sdk/current',
    path.join(deps.homedir(), 'google-cloud-sdk'),
  ])
    candidates.push({ root, via: 'known install path' });

  const check = (root: string, via: string): EmulatorDiscovery | undefined => {
    const launcher = path.join(root, LAUNCHER);
    if (searched.includes(launcher)) return undefined;
    searched.push(launcher);
    if (!deps.isFile(launcher)) return undefined;
    const java = findJava(deps);
    if (!java)
      return { found: false, reason: `found ${launcher} but no Java (JAVA_HOME or java on PATH)`, searched };
    return { found: true, launcher, sdkRoot: root, via, java };
  };

  for (const c of candidates) {
    const hit = check(c.root, c.via);
    if (hit) return hit;
  }
  // Wrappers (snap, Homebrew shims) hide the SDK root: ask gcloud itself — slow, so last.
  if (gcloud) {
    const root = deps.gcloudSdkRoot(gcloud);
    if (root) {
      const hit = check(root, 'gcloud info');
      if (hit) return hit;
    }
  }
  return {
    found: false,
    reason: gcloud
      ? 'the Google Cloud CLI is installed but its Pub/Sub emulator component is not'
      : 'the Google Cloud CLI (gcloud) is not installed',
    searched,
  };
}

/** One-line hint printed with the embedded-fallback notice. */
export const INSTALL_HINT =
  'install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install) and its emulator: ' +
  '`gcloud components install pubsub-emulator` (or apt: google-cloud-cli-pubsub-emulator); Java 11+ is required';
