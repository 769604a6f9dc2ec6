/**
 * The loader's commit point. rawToBronze writes a file's Parquet first and its manifest last, and only
 * once the file's counts balance (rows + rejects = the records read, counted independently): the
 * manifest is the commit. So the storage trigger loads a Parquet when its manifest lands, never when the
 * Parquet itself lands — a Parquet without a manifest (a conversion still running, killed, or refused
 * for COUNT_MISMATCH) is never loaded, and nothing has to be deleted (rawToBronze may only create
 * objects in Bronze).
 */
import type { BronzeManifest } from '../ingest/bronze';
import { permanent, transient } from '../errors';
import { isSmelterError } from '../errors';
import type { ObjectStore } from '../storage/object-store';
import { classifyBronzeObject, type BronzeObject, type Skip } from './loader';

const MANIFEST = /\.manifest\.json$/;

/** The Parquet a finalized Bronze object commits, or why the object is not loaded. */
export async function committedParquet(
  store: ObjectStore,
  o: BronzeObject,
): Promise<{ parquet: BronzeObject; manifest: BronzeManifest } | Skip> {
  if (!MANIFEST.test(o.name)) {
    const cls = classifyBronzeObject(o.name);
    if ('skip' in cls) return cls;
    return { skip: true, reason: 'Parquet: loaded when its manifest (the commit marker) lands' };
  }
  const name = o.name.replace(MANIFEST, '.parquet');
  const cls = classifyBronzeObject(name);
  if ('skip' in cls) return cls;
  const text = await readSmall(store, o);
  if (text === undefined) return { skip: true, reason: 'manifest no longer exists' };
  let manifest: BronzeManifest;
  try {
    manifest = JSON.parse(text) as BronzeManifest;
  } catch {
    throw permanent('BAD_MANIFEST', `gs://${o.bucket}/${o.name} is not JSON; nothing is loaded`);
  }
  const bad = (why: string): never => {
    throw permanent('BAD_MANIFEST', `gs://${o.bucket}/${o.name}: ${why}; its Parquet is not loaded`, {
      details: { object: o.name },
    });
  };
  const out = manifest.output;
  if (!out || out.bucket !== o.bucket || out.name !== name)
    bad(`it names another output (${JSON.stringify(out?.name)})`);
  const { rows, rejected, rowsIn } = manifest;
  if (![rows, rejected, rowsIn].every((n) => Number.isSafeInteger(n) && n >= 0) || rows + rejected !== rowsIn)
    bad(`its counts do not balance (rows ${rows} + rejected ${rejected} ≠ rowsIn ${rowsIn})`);
  const live = await store.stat(o.bucket, name);
  if (!live) bad('its Parquet does not exist');
  if (out.generation !== undefined && live?.generation !== out.generation)
    bad(`its Parquet is generation ${live?.generation}, the manifest committed ${out.generation}`);
  return { parquet: { bucket: o.bucket, name, generation: String(live?.generation) }, manifest };
}

const MAX_MANIFEST_BYTES = 1024 * 1024;

/** The manifest's text; undefined when it is gone. A read that fails is transient (retried). */
async function readSmall(store: ObjectStore, o: BronzeObject): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const c of await store.read(o.bucket, o.name)) {
      const b = Buffer.isBuffer(c) ? c : Buffer.from(c as string);
      size += b.length;
      if (size > MAX_MANIFEST_BYTES)
        throw permanent('BAD_MANIFEST', `gs://${o.bucket}/${o.name} is larger than a manifest can be`);
      chunks.push(b);
    }
  } catch (err) {
    if (isSmelterError(err, 'NOT_FOUND')) return undefined;
    if (isSmelterError(err)) throw err;
    throw transient('STORAGE_UNAVAILABLE', `Cannot read gs://${o.bucket}/${o.name}`, { cause: err });
  }
  return Buffer.concat(chunks).toString('utf8');
}
