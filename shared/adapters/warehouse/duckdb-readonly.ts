/**
 * The local warehouse file opened READ_ONLY, for a dashboard running without `smelter up`. DuckDB
 * lets one process write a file, so the file is opened for a burst of queries and closed again when
 * idle: a stack started later can take it, and the dashboard sees its commits on the next open.
 */
import fs from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import { DuckDbDialect } from '../../warehouse/dialect';
import type { QueryParams } from '../../warehouse/engine';

export class ReadOnlyDuckDb {
  readonly dialect = new DuckDbDialect();
  private instance?: Promise<DuckDBInstance>;
  private busy = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    readonly file: string,
    private readonly opts: { idleMs?: number } = {},
  ) {}

  private open(): Promise<DuckDBInstance> {
    if (!this.instance) {
      const p = (async () => {
        if (!fs.existsSync(this.file))
          throw new Error(`the warehouse file does not exist yet (${this.file}): nothing has been loaded`);
        try {
          const db = await DuckDBInstance.create(this.file, {
            access_mode: 'READ_ONLY',
            threads: '2',
            memory_limit: '256MB',
          });
          const c = await db.connect();
          try {
            await c.run("SET TimeZone = 'UTC'");
          } finally {
            c.closeSync();
          }
          return db;
        } catch (err) {
          const msg = (err as Error).message;
          if (/lock/i.test(msg))
            throw new Error(
              'the warehouse is open in another process (a running `smelter up` serves the dashboard itself; see `smelter status`)',
            );
          throw err;
        }
      })();
      this.instance = p;
      p.catch(() => (this.instance = undefined));
    }
    return this.instance;
  }

  async query<T = Record<string, unknown>>(sql: string, params?: QueryParams): Promise<T[]> {
    clearTimeout(this.timer);
    this.busy++;
    try {
      const db = await this.open();
      const c = await db.connect();
      try {
        const r = await (params ? c.runAndReadAll(sql, { ...params }) : c.runAndReadAll(sql));
        return r.getRowObjectsJson() as T[];
      } finally {
        c.closeSync();
      }
    } finally {
      if (--this.busy === 0)
        this.timer = setTimeout(() => void this.close(), this.opts.idleMs ?? 1000).unref();
    }
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    const p = this.instance;
    this.instance = undefined;
    if (p) (await p.catch(() => undefined))?.closeSync();
  }
}
