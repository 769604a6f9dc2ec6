/**
 * Five-field cron expressions (minute hour day-of-month month day-of-week), evaluated in UTC — the
 * subset Cloud Scheduler and crontab share: `*`, numbers, ranges, steps and lists.
 */
export interface Cron {
  minutes: Set<number>;
  hours: Set<number>;
  days: Set<number>;
  months: Set<number>;
  weekdays: Set<number>;
  /** Day-of-month and day-of-week restricted both: a day matching either matches (crontab rule). */
  domRestricted: boolean;
  dowRestricted: boolean;
}

const FIELDS: [string, number, number][] = [
  ['minute', 0, 59],
  ['hour', 0, 23],
  ['day of month', 1, 31],
  ['month', 1, 12],
  ['day of week', 0, 7],
];

function parseField(text: string, [label, min, max]: [string, number, number]): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\*|(\d{1,2})(?:-(\d{1,2}))?)(?:\/(\d{1,2}))?$/.exec(part);
    if (!m) throw new Error(`cron ${label} "${part}" is not *, N, N-M or a step`);
    const lo = m[1] === '*' ? min : Number(m[2]);
    const hi = m[1] === '*' ? max : m[3] !== undefined ? Number(m[3]) : m[4] !== undefined ? max : lo;
    const step = m[4] !== undefined ? Number(m[4]) : 1;
    if (lo < min || hi > max || lo > hi || step < 1)
      throw new Error(`cron ${label} "${part}" is outside ${min}-${max}`);
    for (let v = lo; v <= hi; v += step) out.add(label === 'day of week' && v === 7 ? 0 : v);
  }
  return out;
}

export function parseCron(expr: string): Cron {
  const parts = expr.trim().split(/\s+/);
  if (parts.length !== 5)
    throw new Error(`"${expr}" is not a five-field cron expression (minute hour day month weekday, UTC)`);
  const [mi, h, d, mo, w] = parts.map((p, i) => parseField(p, FIELDS[i] as [string, number, number]));
  return {
    minutes: mi as Set<number>,
    hours: h as Set<number>,
    days: d as Set<number>,
    months: mo as Set<number>,
    weekdays: w as Set<number>,
    domRestricted: parts[2] !== '*',
    dowRestricted: parts[4] !== '*',
  };
}

export function cronMatches(c: Cron, t: Date): boolean {
  if (
    !c.minutes.has(t.getUTCMinutes()) ||
    !c.hours.has(t.getUTCHours()) ||
    !c.months.has(t.getUTCMonth() + 1)
  )
    return false;
  const dom = c.days.has(t.getUTCDate());
  const dow = c.weekdays.has(t.getUTCDay());
  if (c.domRestricted && c.dowRestricted) return dom || dow;
  return dom && dow;
}

/** The first minute strictly after `after` that matches (searches up to ~4 years ahead). */
export function nextCronTime(c: Cron, after: Date): Date | undefined {
  const t = new Date(Math.floor(after.getTime() / 60_000) * 60_000 + 60_000);
  for (let i = 0; i < 4 * 366 * 24 * 60; i++) {
    if (!c.months.has(t.getUTCMonth() + 1)) {
      t.setUTCMonth(t.getUTCMonth() + 1, 1);
      t.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (cronMatches(c, t)) return t;
    const dom = c.days.has(t.getUTCDate());
    const dow = c.weekdays.has(t.getUTCDay());
    if (!(c.domRestricted && c.dowRestricted ? dom || dow : dom && dow)) {
      t.setUTCDate(t.getUTCDate() + 1);
      t.setUTCHours(0, 0, 0, 0);
    } else if (!c.hours.has(t.getUTCHours())) t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
    else t.setTime(t.getTime() + 60_000);
  }
  return undefined;
}
