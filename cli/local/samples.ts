/**
 * The bundled samples `smelter up` brings in on a fresh home, through the pipeline itself: a rainfall
 * CSV, the store API exports and network measurements dropped into the raw bucket, and the e-commerce
 * events published on the events topic — so the dashboard shows every domain after `npm start`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../shared/paths';
import { rainfallCsvStream } from '../../shared/samples/rainfall';
import type { StackContext } from '../../shared/local/stack';
import { LocalFile } from '../../shared/storage/object-store';

const FILES: { dataset: string; file: string; contentType: string }[] = [
  { dataset: 'store_users', file: 'store/users.json', contentType: 'application/json' },
  { dataset: 'store_products', file: 'store/products.json', contentType: 'application/json' },
  { dataset: 'store_carts', file: 'store/carts.json', contentType: 'application/json' },
  { dataset: 'network_measurements', file: 'network/measurements.json', contentType: 'application/json' },
];

/** Drops/publishes each sample once per home (a marker object per sample); returns what it did. */
export async function bringInSamples(ctx: StackContext): Promise<string[]> {
  const { cfg, store } = ctx;
  const done: string[] = [];
  const rain = 'rainfall/sample/rainfall-sample.csv';
  if (!(await store.stat(cfg.rawBucket, rain))) {
    await store.write(cfg.rawBucket, rain, rainfallCsvStream({ stations: 20, days: 60 }), {
      contentType: 'text/csv',
    });
    done.push(`gs://${cfg.rawBucket}/${rain}`);
  }
  const dir = path.join(packageRoot, 'samples');
  for (const f of FILES) {
    const src = path.join(dir, f.file);
    const name = `${f.dataset}/sample/${path.basename(f.file)}`;
    if (!fs.existsSync(src) || (await store.stat(cfg.rawBucket, name))) continue;
    await store.write(cfg.rawBucket, name, new LocalFile(src), { contentType: f.contentType });
    done.push(`gs://${cfg.rawBucket}/${name}`);
  }
  const events = path.join(dir, 'ecommerce', 'events.ndjson');
  const marker = path.join(cfg.home, 'state', 'samples', 'ecommerce-events.published');
  if (ctx.pubsub && fs.existsSync(events) && !fs.existsSync(marker)) {
    const lines = fs
      .readFileSync(events, 'utf8')
      .split('\n')
      .filter((l) => l.trim());
    for (let i = 0; i < lines.length; i += 100)
      await Promise.all(
        lines.slice(i, i + 100).map((l) => ctx.pubsub?.publish(cfg.eventsTopic, Buffer.from(l))),
      );
    fs.mkdirSync(path.dirname(marker), { recursive: true });
    fs.writeFileSync(marker, new Date().toISOString());
    done.push(`${lines.length} e-commerce events on topic ${cfg.eventsTopic}`);
  }
  return done;
}
