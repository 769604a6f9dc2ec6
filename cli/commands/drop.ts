import fs from 'node:fs';
import path from 'node:path';
import { DATASET_NAME, loadDatasetContract } from '../../shared/contracts/dataset';
import { isSmelterError } from '../../shared/errors';
import { bronzeNames, type BronzeManifest } from '../../shared/ingest/bronze';
import { inferContract } from '../../shared/ingest/infer';
import { progressBus, type ProgressEvent } from '../../shared/ingest/progress';
import { listParked } from '../../shared/local/delivery';
import { runningStack } from '../../shared/local/stack';
import { guessContentType, readObjectJson } from '../../shared/storage/object-store';
import { flagString, type Command } from '../command';
import { cliEnv } from '../env';
import { startLocalStack, type LocalStack } from '../local/stack';

const fmtBytes = (n: number): string =>
  n >= 1024 ** 3
    ? `${(n / 1024 ** 3).toFixed(2)} GB`
    : n >= 1024 ** 2
      ? `${(n / 1024 ** 2).toFixed(1)} MB`
      : `${(n / 1024).toFixed(0)} KB`;

export const dropCommand: Command = {
  name: 'drop',
  summary: 'Copy a file into the raw bucket (optionally infer its contract, wait for Bronze)',
  usage: 'drop FILE --dataset NAME [--name OBJECT] [--infer] [--wait] [--json] [--timeout SECONDS]',
  async run({ args, flags, out, err }) {
    const file = args[0];
    const dataset = flagString(flags, 'dataset');
    if (!file || !dataset) throw new Error('usage: smelter drop FILE --dataset NAME [--wait] [--json]');
    if (!DATASET_NAME.test(dataset))
      throw new Error(`invalid dataset name "${dataset}" (lower-case letters, digits, _)`);
    const st = fs.statSync(file, { throwIfNoEntry: false });
    if (!st?.isFile()) throw new Error(`no such file: ${file}`);
    const { cfg, log, rt } = cliEnv();
    const json = Boolean(flags.json);
    const say = json ? (): void => undefined : out;

    if (flags.infer) {
      const target = path.join(cfg.contractsDir, 'datasets', `${dataset}.json`);
      if (fs.existsSync(target)) say(`contract exists, not overwriting: ${target}`);
      else {
        const engine = await rt.get('engines')({
          memoryLimit: cfg.duckdbMemoryLimit,
          threads: cfg.duckdbThreads,
        });
        const contract = await inferContract(file, dataset, engine);
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.writeFileSync(target, JSON.stringify(contract, null, 2) + '\n');
        say(`inferred a contract → ${target} (review types, required columns and the primary key)`);
      }
    }
    try {
      loadDatasetContract(cfg.contractsDir, dataset);
    } catch (e) {
      if (isSmelterError(e, 'UNKNOWN_DATASET'))
        throw new Error(`${e.message}\n  (create it, or run with --infer to sniff one from the file)`);
      throw e;
    }

    const { store } = rt;
    await store.ensureBucket(cfg.rawBucket);
    const name = flagString(flags, 'name') ?? `${dataset}/${path.basename(file)}`;
    if (!name.startsWith(dataset + '/')) throw new Error(`--name must start with "${dataset}/"`);
    const wait = Boolean(flags.wait);
    const running = runningStack(cfg.home);
    // Without a running stack, --wait brings the functions up in this process.
    let local: LocalStack | undefined;
    if (wait && !running)
      local = await startLocalStack({ cfg, log: log.child({}), ephemeral: true, pollMs: 200 });

    const started = Date.now();
    const meta = await store.write(cfg.rawBucket, name, fs.createReadStream(file), {
      contentType: guessContentType(file),
    });
    say(
      `dropped ${file} (${fmtBytes(st.size)}) → gs://${cfg.rawBucket}/${name} (generation ${meta.generation})`,
    );
    if (!wait) {
      if (!running) say('no stack is running: start one with `npm start`, or pass --wait to convert now');
      if (json) out(JSON.stringify({ source: { bucket: cfg.rawBucket, name, generation: meta.generation } }));
      return 0;
    }

    const names = bronzeNames({ bucket: cfg.rawBucket, name, generation: meta.generation });
    const uri = `gs://${cfg.rawBucket}/${name}`;
    let lastBytes = 0;
    const onProgress = (p: ProgressEvent): void => {
      if (p.uri === uri) lastBytes = p.bytes;
    };
    progressBus.on('progress', onProgress);
    const tty = process.stderr.isTTY && !json;
    let lastLine = 0;
    const timeoutMs = Number(flagString(flags, 'timeout') ?? 3600) * 1000;
    try {
      for (;;) {
        const manifest = await readObjectJson<BronzeManifest>(store, cfg.bronzeBucket, names.manifest);
        const failed = manifest
          ? undefined
          : await readObjectJson<{ error: { code: string; message: string } }>(
              store,
              cfg.quarantineBucket,
              `${names.failed}/error.json`,
            );
        if (manifest || failed) {
          if (tty) process.stderr.write('\r\x1b[K');
          if (local) await local.triggers.idle();
          const result = {
            source: { bucket: cfg.rawBucket, name, generation: meta.generation },
            output: manifest ? { bucket: manifest.output.bucket, name: manifest.output.name } : null,
            rows: manifest?.rows ?? 0,
            rejected: manifest?.rejected ?? 0,
            quarantine: manifest?.quarantine
              ? { bucket: manifest.quarantine.bucket, name: manifest.quarantine.name }
              : failed
                ? { bucket: cfg.quarantineBucket, name: `${names.failed}/error.json`, error: failed.error }
                : null,
            durationMs: manifest?.durationMs ?? Date.now() - started,
          };
          if (json) out(JSON.stringify(result));
          else if (manifest) {
            out(`bronze: ${manifest.output.uri}`);
            out(
              `rows: ${manifest.rows} written, ${manifest.rejected} rejected${manifest.quarantine ? ` → ${manifest.quarantine.uri}` : ''}  (${manifest.durationMs} ms)`,
            );
          } else out(`quarantined: ${failed?.error.code}: ${failed?.error.message}`);
          return failed ? 3 : 0;
        }
        const parked = listParked(path.join(cfg.home, 'state', 'eventarc')).find(
          (p) =>
            p.event.subject === `objects/${name}` &&
            p.target === (running?.endpoints.rawToBronze ?? local?.ctx.endpoints.rawToBronze),
        );
        if (parked)
          throw new Error(`rawToBronze gave up after ${parked.attempts} attempts: ${parked.lastError}`);
        if (Date.now() - started > timeoutMs)
          throw new Error(`timed out after ${timeoutMs / 1000} s waiting for Bronze output`);
        const now = Date.now();
        const pct = lastBytes && st.size ? ` ${fmtBytes(lastBytes)} read` : '';
        if (tty) process.stderr.write(`\r\x1b[Kconverting…${pct} ${((now - started) / 1000).toFixed(1)} s`);
        else if (!json && now - lastLine > 5000 && now - started > 2000) {
          lastLine = now;
          err(`converting…${pct} ${((now - started) / 1000).toFixed(0)} s`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      progressBus.off('progress', onProgress);
      if (local) await local.stop();
    }
  },
};
