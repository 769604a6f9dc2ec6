/**
 * Runs the one ObjectStore contract against every driver: memory, filesystem, GCS (the real
 * `@google-cloud/storage` client against the in-process GCS JSON-API server) and, only when
 * SMELTER_TEST_GCS_BUCKET is set, real GCS (credentials from the environment, as for any client).
 */
import { IdempotencyStrategy, Storage } from '@google-cloud/storage';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FsObjectStore } from '../../../../shared/adapters/storage/fs';
import { GcsObjectStore } from '../../../../shared/adapters/storage/gcs';
import { MemoryObjectStore } from '../../../../shared/adapters/storage/memory';
import { startGcsServer, useGcsEmulatorEnv, type GcsTestServer } from '../../../support/gcs-server';
import { collect, objectStoreContract } from './contract';

objectStoreContract('memory', async () => ({ store: new MemoryObjectStore(), bucket: 'contract' }));

objectStoreContract('fs', async () => {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'smelter-fs-contract-'));
  return {
    store: new FsObjectStore(home),
    bucket: 'contract',
    dispose: () => fs.rm(home, { recursive: true, force: true }),
  };
});

describe('GCS driver against the GCS JSON-API test server', () => {
  let srv: GcsTestServer;
  let store: GcsObjectStore;
  let restoreEnv: () => void;

  before(async () => {
    srv = await startGcsServer();
    restoreEnv = useGcsEmulatorEnv(srv.url);
    store = new GcsObjectStore({ projectId: 'smelter-test' });
  });

  after(async () => {
    restoreEnv();
    await srv.close();
  });

  objectStoreContract('gcs (test server)', async () => {
    srv.reset();
    srv.createBucket('contract');
    return { store, bucket: 'contract' };
  });
});

// A test-only switch, not a Smelter option: read here rather than in the options table.
const realBucket = process.env.SMELTER_TEST_GCS_BUCKET;
if (realBucket) {
  describe('GCS driver against real GCS (SMELTER_TEST_GCS_BUCKET)', function () {
    this.timeout(120_000);
    // GCS allows about one write per second to one object name and answers 429 beyond that; the tests
    // overwrite quickly, so let the client retry every request (fine for tests, not for production).
    const store = new GcsObjectStore({
      storage: new Storage({
        ...(process.env.GOOGLE_CLOUD_PROJECT ? { projectId: process.env.GOOGLE_CLOUD_PROJECT } : {}),
        retryOptions: { idempotencyStrategy: IdempotencyStrategy.RetryAlways },
      }),
    });
    objectStoreContract('gcs (real)', async () => {
      const prefix = `smelter-contract/${Date.now()}-${randomBytes(4).toString('hex')}/`;
      return {
        store,
        bucket: realBucket,
        prefix,
        dispose: async () => {
          for (const m of await collect(store.list(realBucket, prefix)))
            await store.delete(realBucket, m.name);
        },
      };
    });
  });
} else {
  describe('ObjectStore contract: gcs (real)', () => {
    it.skip('runs only when SMELTER_TEST_GCS_BUCKET names a bucket this machine can write to');
  });
}
