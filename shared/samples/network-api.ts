/**
 * Deterministic internet speed tests in the shape of data.gov.gr's query API (a bare JSON array of
 * flat, snake_case records per requested day). Each day is generated from (seed, date) alone, so any
 * window answers the same records for the same day. A fixed population of anonymous devices measures
 * on some days, in one or two bursts ("sessions") of a few tests minutes apart.
 */
import { mulberry32 } from './rainfall';
import type { ApiRecord } from './store-api';

export interface NetworkApiOptions {
  seed?: number;
  /** Size of the device population (default 250: about 300 tests a day). */
  devices?: number;
}

export const NETWORK_REGIONS = [
  'Attiki',
  'Kentriki Makedonia',
  'Kriti',
  'Dytiki Ellada',
  'Thessalia',
  'Peloponnisos',
  'Anatoliki Makedonia kai Thraki',
  'Ipeiros',
  'Notio Aigaio',
];
const ISPS = ['Cosmote', 'Vodafone', 'Nova', 'Inalan'];
/** Technology → typical download speed (Mbps): spans every step of the frustration staircase. */
const TECH: [string, number][] = [
  ['ADSL', 6],
  ['VDSL', 45],
  ['FTTH', 320],
  ['4G', 22],
  ['5G', 140],
];

interface Device {
  id: string;
  region: string;
  isp: string;
  technology: string;
  base: number;
  /** Probability of measuring on a given day. */
  activity: number;
}

const DAY_MS = 86_400_000;
const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

function devices(seed: number, n: number): Device[] {
  const rnd = mulberry32(seed * 7_919 + 17);
  return Array.from({ length: n }, (_, i) => {
    const [technology, base] = TECH[Math.floor(rnd() * TECH.length)] as [string, number];
    return {
      id: `dev-${String(i + 1).padStart(4, '0')}`,
      region: NETWORK_REGIONS[Math.floor(rnd() * NETWORK_REGIONS.length)] as string,
      isp: ISPS[Math.floor(rnd() * ISPS.length)] as string,
      technology,
      base,
      activity: 0.15 + rnd() * 0.4,
    };
  });
}

const dayNumber = (date: string): number => Math.floor(Date.parse(`${date}T00:00:00Z`) / DAY_MS);

/** The measurements of one UTC day (`YYYY-MM-DD`), in time order. */
export function networkApiDay(date: string, opts: NetworkApiOptions = {}): ApiRecord[] {
  const seed = opts.seed ?? 1;
  const dn = dayNumber(date);
  if (!Number.isFinite(dn)) throw new RangeError(`not a date: ${date}`);
  const rnd = mulberry32((seed * 1_000_003) ^ (dn * 2_654_435_761));
  const tests: { at: number; d: Device; down: number }[] = [];
  for (const d of devices(seed, opts.devices ?? 250)) {
    if (rnd() >= d.activity) continue;
    const sessions = rnd() < 0.25 ? 2 : 1;
    // Sessions hours apart (the second one at least 2 h after the first), tests 1–5 minutes apart.
    let at = dn * DAY_MS + Math.floor(rnd() * 10 * 3_600_000);
    for (let s = 0; s < sessions; s++) {
      const n = 1 + Math.floor(rnd() * 4);
      // A session's tests share the line's condition of the moment (a bad hour is bad for every test).
      const condition = 0.15 + rnd() * 1.1;
      for (let t = 0; t < n; t++) {
        tests.push({ at, d, down: Math.max(0.3, d.base * condition * (0.85 + rnd() * 0.3)) });
        at += 60_000 + Math.floor(rnd() * 4 * 60_000);
      }
      at += 2 * 3_600_000 + Math.floor(rnd() * 8 * 3_600_000);
    }
  }
  tests.sort((a, b) => a.at - b.at || a.d.id.localeCompare(b.d.id));
  return tests
    .filter((x) => x.at < (dn + 1) * DAY_MS)
    .map((x, i) => ({
      id: `${date.replace(/-/g, '')}-${String(i + 1).padStart(5, '0')}`,
      date,
      timestamp: new Date(x.at).toISOString(),
      device_id: x.d.id,
      region: x.d.region,
      isp: x.d.isp,
      technology: x.d.technology,
      download_speed: round(x.down),
      upload_speed: round(x.down * (x.d.technology === 'FTTH' ? 0.3 : 0.12)),
      latency: round((x.d.technology.endsWith('G') ? 28 : 9) + rnd() * 30),
      jitter: round(rnd() * 12),
      packet_loss: round(rnd() < 0.85 ? 0 : rnd() * 2, 2),
    }));
}

/** Every day from `from` to `to`, both inclusive (`YYYY-MM-DD`). */
export function daysBetween(from: string, to: string): string[] {
  const a = dayNumber(from);
  const b = dayNumber(to);
  const out: string[] = [];
  for (let d = a; d <= b; d++) out.push(new Date(d * DAY_MS).toISOString().slice(0, 10));
  return out;
}
