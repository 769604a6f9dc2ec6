/**
 * Deterministic rainfall sample (the parametric-insurance case): stations × days of precipitation in
 * mm, with gaps where nothing was recorded (filled with 0 by the contract's default) and the odd wet
 * spell that crosses payout thresholds. Same seed → same bytes.
 */
import { Readable } from 'node:stream';

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const REGIONS = ['North', 'South', 'East', 'West', 'Central'];

export interface RainfallSampleOptions {
  stations?: number;
  days?: number;
  start?: string;
  seed?: number;
  /** Share of rain values left empty (gaps). */
  gapRate?: number;
}

export interface Station {
  id: string;
  name: string;
  region: string;
  lat: number;
  lon: number;
}

export function stations(n: number, seed = 7): Station[] {
  const rnd = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => ({
    id: `ST${String(i + 1).padStart(4, '0')}`,
    name: `Station ${i + 1}`,
    region: REGIONS[i % REGIONS.length] as string,
    lat: Math.round((45 + rnd() * 10) * 1e4) / 1e4,
    lon: Math.round((-2 + rnd() * 12) * 1e4) / 1e4,
  }));
}

/** CSV rows (header first) as an async iterable of strings: constant memory for any size. */
export async function* rainfallCsv(opts: RainfallSampleOptions = {}): AsyncGenerator<string> {
  const n = opts.stations ?? 20;
  const days = opts.days ?? 60;
  const start = Date.parse((opts.start ?? '2024-01-01') + 'T00:00:00Z');
  const gap = opts.gapRate ?? 0.08;
  const st = stations(n, opts.seed ?? 7);
  const rnd = mulberry32((opts.seed ?? 7) * 31 + 1);
  yield 'station_id,station_name,region,lat,lon,date,rain_mm,measured_at\n';
  let batch = '';
  for (let d = 0; d < days; d++) {
    const date = new Date(start + d * 86_400_000).toISOString().slice(0, 10);
    // A regional wet spell every ~3 weeks pushes some stations over payout thresholds.
    const spell = Math.floor(d / 7) % 3 === 2;
    for (const s of st) {
      const r = rnd();
      let rain = r < 0.55 ? 0 : Math.round(-Math.log(1 - rnd()) * (spell ? 18 : 6) * 10) / 10;
      if (spell && s.region === 'North' && rnd() < 0.3) rain += 40;
      const value = rnd() < gap ? '' : rain.toFixed(1);
      batch += `${s.id},${s.name},${s.region},${s.lat},${s.lon},${date},${value},${date}T06:00:00Z\n`;
    }
    if (batch.length > 256 * 1024) {
      yield batch;
      batch = '';
    }
  }
  if (batch) yield batch;
}

export function rainfallCsvStream(opts: RainfallSampleOptions = {}): Readable {
  return Readable.from(rainfallCsv(opts));
}

/** Rows needed for roughly `bytes` of CSV (≈ 70 bytes per row). */
export function rainfallOptionsForBytes(bytes: number, stationsCount = 500): RainfallSampleOptions {
  return { stations: stationsCount, days: Math.max(1, Math.ceil(bytes / 70 / stationsCount)) };
}
