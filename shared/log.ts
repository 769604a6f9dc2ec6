/**
 * Structured logging. Inside functions every line is one JSON object in the shape Cloud Logging
 * parses (`severity`, `message`, plus fields); in the CLI lines are human-readable.
 */
import { option } from './config';

export type Severity = 'DEBUG' | 'INFO' | 'NOTICE' | 'WARNING' | 'ERROR' | 'CRITICAL';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  notice(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

export type LogFormat = 'json' | 'text' | 'silent';
type Sink = (line: string, severity: Severity) => void;

const ORDER: Record<Severity, number> = { DEBUG: 0, INFO: 1, NOTICE: 2, WARNING: 3, ERROR: 4, CRITICAL: 5 };

// Cloud Logging reads both streams; the CLI sends every log line to stderr so stdout stays clean for
// command output such as `--json` (SMELTER_LOG_STDERR=1). The logger runs before (and without) the
// configuration, so it reads its options one by one.
const defaultSink: Sink = (line, severity) => {
  const toErr = ORDER[severity] >= ORDER.WARNING || option('logStderr');
  (toErr ? process.stderr : process.stdout).write(line + '\n');
};

export function createLogger(
  opts: { format?: LogFormat; level?: Severity; fields?: LogFields; sink?: Sink } = {},
): Logger {
  const format = opts.format ?? option('logFormat');
  const level = opts.level ?? option('logLevel');
  const base = opts.fields ?? {};
  const sink = opts.sink ?? defaultSink;

  const emit = (severity: Severity, message: string, fields?: LogFields): void => {
    if (format === 'silent' || ORDER[severity] < (ORDER[level] ?? 1)) return;
    const all = { ...base, ...fields };
    if (format === 'json') {
      sink(JSON.stringify({ severity, message, ...serialise(all) }), severity);
    } else {
      const extras = Object.entries(all)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(serialiseValue(v))}`)
        .join(' ');
      sink(`${severity.padEnd(7)} ${message}${extras ? '  ' + extras : ''}`, severity);
    }
  };

  return {
    debug: (m, f) => emit('DEBUG', m, f),
    info: (m, f) => emit('INFO', m, f),
    notice: (m, f) => emit('NOTICE', m, f),
    warn: (m, f) => emit('WARNING', m, f),
    error: (m, f) => emit('ERROR', m, f),
    child: (fields) => createLogger({ format, level, sink, fields: { ...base, ...fields } }),
  };
}

function serialise(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) out[k] = serialiseValue(v);
  return out;
}

function serialiseValue(v: unknown): unknown {
  if (v instanceof Error) {
    const e = v as Error & { code?: unknown; kind?: unknown };
    return {
      name: e.name,
      message: e.message,
      code: e.code,
      kind: e.kind,
      cause: e.cause instanceof Error ? e.cause.message : e.cause,
    };
  }
  if (typeof v === 'bigint') return v.toString();
  return v;
}
