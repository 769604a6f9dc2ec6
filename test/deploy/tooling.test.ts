/**
 * Deploy tooling: what gets uploaded (.gcloudignore through gcloud itself), the deterministic source
 * zip, `terraform fmt`, and deploy.sh's orchestration (run against stub terraform/gcloud/npm/npx).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { packageRoot } from '../../shared/paths';
import { costTable } from '../../deploy/scripts/cost-table';
import { filesForUpload, packSource } from '../../deploy/scripts/pack-source';
import { crc32, zipEntries, type ZipEntry } from '../../deploy/scripts/zip';

const DEPLOY = path.join(packageRoot, 'deploy');

function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Reads a zip through its central directory, independently of the writer. */
function readZip(buf: Buffer): { name: string; data: Buffer; mode: number }[] {
  const eocd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  assert.ok(eocd >= 0, 'end of central directory');
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const out: { name: string; data: Buffer; mode: number }[] = [];
  for (let i = 0; i < count; i++) {
    assert.equal(buf.readUInt32LE(p), 0x02014b50);
    const method = buf.readUInt16LE(p + 10);
    const crc = buf.readUInt32LE(p + 16);
    const csize = buf.readUInt32LE(p + 20);
    const nlen = buf.readUInt16LE(p + 28);
    const mode = (buf.readUInt32LE(p + 38) >>> 16) & 0o777;
    const off = buf.readUInt32LE(p + 42);
    const name = buf.subarray(p + 46, p + 46 + nlen).toString('utf8');
    const local = off + 30 + buf.readUInt16LE(off + 26) + buf.readUInt16LE(off + 28);
    const body = buf.subarray(local, local + csize);
    const data = method === 8 ? zlib.inflateRawSync(body) : Buffer.from(body);
    assert.equal(crc32(data), crc, `${name}: crc`);
    out.push({ name, data, mode });
    p += 46 + nlen + buf.readUInt16LE(p + 30) + buf.readUInt16LE(p + 32);
  }
  return out;
}

describe('deploy: .gcloudignore (what `gcloud functions deploy` would upload)', function () {
  let files: string[] = [];
  before(function () {
    if (!hasCommand('gcloud')) {
      console.log('      notice: gcloud is not installed; skipping the .gcloudignore checks');
      this.skip();
    }
    this.timeout(60_000);
    files = filesForUpload(packageRoot); // the one gcloud run of this suite
  });

  it('exists at the repository root', function () {
    assert.ok(
      fs.existsSync(path.join(packageRoot, '.gcloudignore')),
      'add .gcloudignore (without it gcloud falls back to .gitignore and uploads test/, bench/ and deploy/)',
    );
  });

  it('uploads every build input', function () {
    for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json'])
      assert.ok(files.includes(f), f);
    const walk = (dir: string): string[] =>
      fs.existsSync(path.join(packageRoot, dir))
        ? fs
            .readdirSync(path.join(packageRoot, dir), { recursive: true, withFileTypes: true })
            .filter((d) => d.isFile())
            .map((d) => path.relative(packageRoot, path.join(d.parentPath, d.name)).split(path.sep).join('/'))
        : [];
    const inputs = [
      ...walk('functions').filter((f) => f.endsWith('.ts')),
      ...walk('shared').filter((f) => f.endsWith('.ts')),
      ...walk('contracts').filter((f) => f.endsWith('.json')),
      ...walk('models').filter((f) => f.endsWith('.sql')),
    ];
    assert.ok(inputs.length > 0);
    const missing = inputs.filter((f) => !files.includes(f));
    assert.deepEqual(missing, [], 'sources, contracts and models the functions read at run time');
  });

  it('drops tests, benchmarks, deploy, local state, dependencies, build output and VCS', function () {
    const dropped = [
      'test/',
      'bench/',
      'deploy/',
      '.smelter/',
      'node_modules/',
      'dist/',
      '.git/',
      'coverage/',
      '.terraform/',
    ];
    const leaked = files.filter((f) => dropped.some((d) => f.startsWith(d) || f.includes(`/${d}`)));
    assert.deepEqual(leaked.slice(0, 10), [], `${leaked.length} files that must not be uploaded`);
    // Not vacuous: these folders exist in every checkout.
    for (const d of ['test', 'deploy']) assert.ok(fs.existsSync(path.join(packageRoot, d)));
  });
});

describe('deploy: source archive', function () {
  const entries: ZipEntry[] = [
    { name: 'package.json', data: Buffer.from('{"name":"x"}\n'), mode: 0o644 },
    { name: 'bin/run.js', data: Buffer.from('#!/usr/bin/env node\n'), mode: 0o755 },
    { name: 'shared/big.ts', data: Buffer.from('export const x = 1;\n'.repeat(500)), mode: 0o644 },
    { name: 'contracts/ünïcode.json', data: Buffer.alloc(0), mode: 0o644 },
  ];

  it('round-trips names, contents and modes', function () {
    const files = readZip(zipEntries(entries));
    assert.deepEqual(
      files.map((f) => f.name),
      entries.map((e) => e.name).sort(),
    );
    for (const e of entries) {
      const f = files.find((x) => x.name === e.name);
      assert.ok(f && f.data.equals(e.data), e.name);
      assert.equal(f.mode, e.mode, `${e.name} mode`);
    }
  });

  it('is byte-for-byte deterministic whatever the input order', function () {
    const a = zipEntries(entries);
    const b = zipEntries([...entries].reverse());
    assert.ok(a.equals(b));
  });

  it('is readable by unzip', function () {
    if (!hasCommand('unzip')) this.skip();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-zip-'));
    try {
      fs.writeFileSync(path.join(tmp, 'a.zip'), zipEntries(entries));
      const out = execFileSync('unzip', ['-t', path.join(tmp, 'a.zip')], { encoding: 'utf8' });
      assert.match(out, /No errors detected/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('refuses unsafe entry names', function () {
    assert.throws(() => zipEntries([{ name: '../x', data: Buffer.alloc(1), mode: 0o644 }]), /unsafe/);
    assert.throws(() => zipEntries([{ name: '/etc/x', data: Buffer.alloc(1), mode: 0o644 }]), /unsafe/);
  });

  it('packs exactly the files gcloud lists, and refuses lists that miss build inputs or leak local state', function () {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-pack-'));
    try {
      const root = path.join(tmp, 'repo');
      const list = [
        'package.json',
        'package-lock.json',
        'tsconfig.json',
        'tsconfig.build.json',
        'functions/index.ts',
      ];
      for (const f of [...list, 'node_modules/x/index.js']) {
        fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
        fs.writeFileSync(path.join(root, f), `// ${f}\n`);
      }
      const stub = (lines: string[]): string => {
        const file = path.join(tmp, `gcloud-${lines.length}-${Math.random().toString(36).slice(2)}`);
        fs.writeFileSync(
          file,
          `#!/bin/sh\n[ "$1 $2" = "meta list-files-for-upload" ] || exit 9\nprintf '%s\\n' ${lines.map((l) => `'${l}'`).join(' ')}\n`,
          {
            mode: 0o755,
          },
        );
        return file;
      };
      const out = path.join(tmp, 'out', 'source.zip');
      const r = packSource(root, out, stub(list));
      assert.equal(r.files, list.length);
      assert.deepEqual(
        readZip(fs.readFileSync(out)).map((f) => f.name),
        [...list].sort(),
      );
      assert.throws(
        () => packSource(root, out, stub(list.slice(1))),
        /drops files the build needs: package\.json/,
      );
      assert.throws(
        () => packSource(root, out, stub([...list, 'node_modules/x/index.js'])),
        /must not be uploaded/,
      );
      assert.throws(() => packSource(root, out, path.join(tmp, 'no-such-gcloud')), /gcloud not found/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('deploy: terraform fmt', function () {
  it('`terraform fmt -check -recursive deploy/` passes', function () {
    if (!hasCommand('terraform')) {
      console.log('      notice: terraform is not installed; skipping the fmt check');
      this.skip();
    }
    const r = spawnSync('terraform', ['fmt', '-check', '-recursive', 'deploy/'], {
      cwd: packageRoot,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, `unformatted: ${r.stdout}${r.stderr}`);
    const example = fs.readFileSync(path.join(DEPLOY, 'terraform.tfvars.example'), 'utf8');
    const fmt = spawnSync('terraform', ['fmt', '-'], { input: example, encoding: 'utf8' });
    assert.equal(fmt.stdout, example, 'terraform.tfvars.example is formatted');
  });
});

describe('deploy: deploy.sh', function () {
  let tmp: string;
  let log: string;
  let tfvars: string;
  const run = (
    args: string[],
    env: Record<string, string> = {},
  ): { status: number | null; out: string; calls: string[] } => {
    fs.writeFileSync(log, '');
    const r = spawnSync('bash', [path.join(DEPLOY, 'deploy.sh'), ...args], {
      encoding: 'utf8',
      input: '',
      env: {
        ...process.env,
        PATH: `${path.join(tmp, 'bin')}${path.delimiter}${process.env.PATH ?? ''}`,
        STUB_LOG: log,
        DEPLOY_BUILD_DIR: path.join(tmp, 'build'),
        TF_STATE_BUCKET: 'state-bucket',
        ...env,
      },
    });
    return {
      status: r.status,
      out: r.stdout + r.stderr,
      calls: fs.readFileSync(log, 'utf8').split('\n').filter(Boolean),
    };
  };

  before(function () {
    if (!hasCommand('bash')) this.skip();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-deploy-'));
    log = path.join(tmp, 'calls.log');
    fs.mkdirSync(path.join(tmp, 'bin'));
    for (const cmd of ['terraform', 'gcloud', 'npm', 'npx'])
      fs.writeFileSync(path.join(tmp, 'bin', cmd), `#!/bin/sh\necho "${cmd} $*" >> "$STUB_LOG"\n`, {
        mode: 0o755,
      });
    tfvars = path.join(tmp, 'prod.tfvars');
    fs.writeFileSync(
      tfvars,
      'project     = "acme-data-prod"\nregion      = "europe-west4"\nname_prefix = "smx"\n',
    );
  });
  after(function () {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('parses', function () {
    assert.equal(spawnSync('bash', ['-n', path.join(DEPLOY, 'deploy.sh')]).status, 0);
  });

  it('plan: builds, checks the generated files, packs, enables APIs, inits the GCS backend and plans with the tfvars', function () {
    const r = run(['plan', '--var-file', tfvars]);
    assert.equal(r.status, 0, r.out);
    const at = (re: RegExp): number => {
      const i = r.calls.findIndex((c) => re.test(c));
      assert.ok(i >= 0, `expected a call matching ${re}:\n${r.calls.join('\n')}`);
      return i;
    };
    const order = [
      at(/^npm ci$/),
      at(/^npm run build$/),
      at(/^npx --no-install tsx deploy\/scripts\/generate\.ts --check$/),
      at(/^npx --no-install tsx deploy\/scripts\/pack-source\.ts --out .*\/build\/source\.zip$/),
      at(/^gcloud services enable --project=acme-data-prod /),
      at(
        /^terraform -chdir=\S+ init -input=false -reconfigure -backend-config=bucket=state-bucket -backend-config=prefix=smelter\/smx$/,
      ),
      at(/^terraform -chdir=\S+ plan -input=false /),
    ];
    assert.deepEqual(
      order,
      [...order].sort((a, b) => a - b),
      'steps run in order',
    );
    const enable = r.calls.find((c) => c.startsWith('gcloud services enable')) as string;
    for (const api of [
      'cloudfunctions',
      'run',
      'eventarc',
      'pubsub',
      'storage',
      'bigquery',
      'cloudbuild',
      'artifactregistry',
      'cloudscheduler',
      'monitoring',
      'logging',
      'iam',
      'secretmanager',
      'datacatalog',
      'bigquerydatapolicy',
    ])
      assert.ok(enable.includes(` ${api}.googleapis.com`), api);
    const plan = r.calls.find((c) => / plan /.test(c)) as string;
    assert.ok(plan.includes(`-var-file=${tfvars}`), plan);
    assert.ok(plan.includes(`-var=source_archive=${path.join(tmp, 'build', 'source.zip')}`), plan);
    assert.ok(!r.calls.some((c) => / apply /.test(c)), 'plan does not apply');
  });

  it('apply --yes applies the saved plan; without --yes and no terminal it refuses', function () {
    const yes = run(['apply', '--yes', '--skip-build', '--var-file', tfvars], { SKIP_ENABLE_APIS: '1' });
    assert.equal(yes.status, 0, yes.out);
    assert.ok(!yes.calls.some((c) => c.startsWith('npm ')), '--skip-build');
    assert.ok(!yes.calls.some((c) => c.startsWith('gcloud services')), 'SKIP_ENABLE_APIS');
    assert.ok(
      yes.calls.some((c) => new RegExp(`apply -input=false ${path.join(tmp, 'build', 'tfplan')}$`).test(c)),
      yes.calls.join('\n'),
    );

    const no = run(['apply', '--skip-build', '--var-file', tfvars], { SKIP_ENABLE_APIS: '1' });
    assert.equal(no.status, 1);
    assert.match(no.out, /--yes/);
    assert.ok(!no.calls.some((c) => / apply /.test(c)));
  });

  it('destroy plans a destroy; a missing state bucket or tfvars stops before touching anything', function () {
    const d = run(['destroy', '--yes', '--var-file', tfvars]);
    assert.equal(d.status, 0, d.out);
    assert.ok(d.calls.some((c) => / plan .*-destroy/.test(c)));
    assert.ok(!d.calls.some((c) => c.startsWith('npm ')), 'no build to destroy');

    const noState = run(['plan', '--var-file', tfvars], { TF_STATE_BUCKET: '' });
    assert.equal(noState.status, 1);
    assert.match(noState.out, /TF_STATE_BUCKET/);
    assert.deepEqual(noState.calls, []);

    const noVars = run(['plan', '--var-file', path.join(tmp, 'missing.tfvars')]);
    assert.equal(noVars.status, 1);
    assert.match(noVars.out, /terraform\.tfvars\.example/);
    assert.deepEqual(noVars.calls, []);
  });
});

describe('deploy: README', function () {
  const readme = fs.readFileSync(path.join(DEPLOY, 'README.md'), 'utf8');

  it('carries the cost table exactly as deploy/scripts/cost-table.ts computes it', function () {
    const m = /<!-- cost-table:start -->\n([\s\S]*?)\n<!-- cost-table:end -->/.exec(readme);
    assert.ok(m, 'cost-table markers');
    assert.equal(
      m[1],
      costTable(),
      'run `npx tsx deploy/scripts/cost-table.ts` and paste the output between the markers',
    );
    for (const scenario of ['1 GB/day', '1 TB/day', '100 events/s', '10,000 events/s'])
      assert.ok(m[1]?.includes(`**${scenario}`), scenario);
  });

  it('lists the APIs deploy.sh enables, the teardown and the documented project-level grants', function () {
    const script = fs.readFileSync(path.join(DEPLOY, 'deploy.sh'), 'utf8');
    const apis = [...script.matchAll(/([a-z]+)\.googleapis\.com/g)].map((x) => x[1] as string);
    assert.ok(apis.length >= 12);
    for (const api of apis) assert.ok(readme.includes(`${api}.googleapis.com`), `${api} in the README`);
    assert.match(readme, /## Teardown/);
    for (const role of ['roles/pubsub.publisher', 'roles/eventarc.eventReceiver', 'roles/bigquery.jobUser'])
      assert.ok(readme.includes(role), role);
  });
});
