/** A throw-away SMELTER_HOME with the environment pointing at it, for tests of the local backend. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FsObjectStore } from '../../shared/adapters/storage/fs';
import { config, resetConfig, type Config } from '../../shared/config';
import { closeRuntime } from '../../shared/composition/runtime';

export interface TestHome {
  home: string;
  cfg: Config;
  store: FsObjectStore;
  /** Closes the process runtime (router, DuckDB, …), restores the environment, removes the folder. */
  cleanup(): Promise<void>;
}

export async function testHome(env: Record<string, string> = {}): Promise<TestHome> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-test-'));
  const saved: Record<string, string | undefined> = {};
  const all = {
    SMELTER_HOME: home,
    SMELTER_BACKEND: 'local',
    SMELTER_LOG_FORMAT: 'silent',
    METADATA_SERVER_DETECTION: 'none',
    ...env,
  };
  for (const [k, v] of Object.entries(all)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  await closeRuntime();
  resetConfig();
  const cfg = config();
  const store = new FsObjectStore(home);
  for (const b of [cfg.rawBucket, cfg.bronzeBucket, cfg.quarantineBucket, cfg.archiveBucket])
    await store.ensureBucket(b);
  return {
    home,
    cfg,
    store,
    async cleanup() {
      await closeRuntime();
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      resetConfig();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

export async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(chunks);
}
