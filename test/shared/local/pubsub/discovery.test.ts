/** Emulator discovery without touching the machine: PATH, symlinks, CLOUDSDK_ROOT_DIR, `gcloud info`, Java. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { discoverEmulator, LAUNCHER, type DiscoveryDeps } from '../../../../shared/local/pubsub/discovery';

function fakeMachine(
  files: string[],
  opts: { env?: NodeJS.ProcessEnv; links?: Record<string, string>; sdkRoot?: string } = {},
) {
  const set = new Set(files);
  const calls: string[] = [];
  const deps: Partial<DiscoveryDeps> = {
    env: { PATH: '/usr/local/bin:/usr/bin', ...opts.env },
    isFile: (p) => set.has(p),
    realpath: (p) => opts.links?.[p] ?? p,
    gcloudSdkRoot: (g) => {
      calls.push(g);
      return opts.sdkRoot;
    },
    homedir: () => '/home/dev',
  };
  return { deps, calls };
}

describe('pubsub: emulator discovery', () => {
  it('follows gcloud on PATH through its symlink to the SDK root', () => {
    const { deps, calls } = fakeMachine(
      ['/usr/bin/gcloud', '/usr/bin/java', path.join('/opt/sdk', LAUNCHER)],
      {
        links: { '/usr/bin/gcloud': '/opt/sdk/bin/gcloud' },
      },
    );
    const d = discoverEmulator(deps);
    assert.ok(d.found);
    assert.equal(d.launcher, path.join('/opt/sdk', LAUNCHER));
    assert.equal(d.java, '/usr/bin/java');
    assert.match(d.via, /gcloud on PATH/);
    assert.equal(calls.length, 0, '`gcloud info` (slow) is not needed');
  });

  it('prefers CLOUDSDK_ROOT_DIR, and checks known install paths such as ~/google-cloud-sdk', () => {
    const a = fakeMachine(
      ['/usr/bin/java', path.join('/custom', LAUNCHER), path.join('/usr/lib/google-cloud-sdk', LAUNCHER)],
      {
        env: { CLOUDSDK_ROOT_DIR: '/custom' },
      },
    );
    const d1 = discoverEmulator(a.deps);
    assert.ok(d1.found && d1.sdkRoot === '/custom' && d1.via === 'CLOUDSDK_ROOT_DIR');
    const b = fakeMachine(['/usr/bin/java', path.join('/home/dev/google-cloud-sdk', LAUNCHER)]);
    const d2 = discoverEmulator(b.deps);
    assert.ok(d2.found && d2.sdkRoot === '/home/dev/google-cloud-sdk');
  });

  it('asks `gcloud info` when gcloud is a wrapper outside the SDK', () => {
    const { deps, calls } = fakeMachine(
      ['/usr/local/bin/gcloud', '/usr/bin/java', path.join('/nix/store/sdk', LAUNCHER)],
      {
        sdkRoot: '/nix/store/sdk',
      },
    );
    const d = discoverEmulator(deps);
    assert.deepEqual(calls, ['/usr/local/bin/gcloud']);
    assert.ok(d.found && d.via === 'gcloud info');
  });

  it('uses JAVA_HOME, and reports a missing Java', () => {
    const withHome = fakeMachine(['/jdk/bin/java', path.join('/usr/lib/google-cloud-sdk', LAUNCHER)], {
      env: { JAVA_HOME: '/jdk' },
    });
    const d1 = discoverEmulator(withHome.deps);
    assert.ok(d1.found && d1.java === '/jdk/bin/java');
    const noJava = fakeMachine([path.join('/usr/lib/google-cloud-sdk', LAUNCHER)]);
    const d2 = discoverEmulator(noJava.deps);
    assert.ok(!d2.found);
    assert.match(d2.reason, /no Java/);
  });

  it('explains what is missing: the CLI, or only its emulator component', () => {
    const none = discoverEmulator(fakeMachine([]).deps);
    assert.ok(!none.found);
    assert.match(none.reason, /gcloud\) is not installed/);
    assert.ok(none.searched.includes(path.join('/home/dev/google-cloud-sdk', LAUNCHER)));
    const cliOnly = discoverEmulator(
      fakeMachine(['/usr/bin/gcloud', '/usr/bin/java'], {
        links: { '/usr/bin/gcloud': '/opt/sdk/bin/gcloud' },
      }).deps,
    );
    assert.ok(!cliOnly.found);
    assert.match(cliOnly.reason, /emulator component is not/);
  });
});
