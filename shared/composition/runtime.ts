/**
 * The composition root: one runtime per process hands out every service the function roots, the CLI
 * and the local stack need — configuration, logger, object store, warehouse, event router and its
 * parts, … (see services.ts for the list and which adapter backs each). Services are built lazily on
 * first use, once; `close()` releases every service the runtime built, users before resources.
 *
 *   const rt = runtime();                       // the process's runtime (built from the environment)
 *   rt.cfg; rt.log; rt.store;                   // shorthands for rt.get('config' | 'log' | 'store')
 *   const wh = await rt.get('warehouse');
 *
 * Tests and the CLI install a runtime with some services given (the rest are built as usual), and
 * close it when done:
 *
 *   useRuntime({ config: cfg, log, store, warehouse: Promise.resolve(wh) });
 *   …
 *   await closeRuntime();                       // flushes the event router, closes DuckDB, …
 *
 * or replace one service of the current runtime before it is first used:
 *
 *   runtime().override({ eventArchive: failingArchive });
 *
 * Services given to `useRuntime` or `override` belong to the caller: the runtime never closes them.
 */
import { CLOSE_ORDER, FACTORIES, type Built, type ServiceName, type Services } from './services';

export type { Services, ServiceName } from './services';

export class Runtime {
  private readonly built = new Map<ServiceName, Built<unknown>>();
  private closed = false;

  constructor(private readonly given: Partial<Services> = {}) {}

  /** The service, built on first use (or the one given to the constructor). */
  get<K extends ServiceName>(name: K): Services[K] {
    if (name in this.given) return this.given[name] as Services[K];
    let b = this.built.get(name);
    if (!b) {
      if (this.closed) throw new Error(`runtime closed: cannot build ${name}`);
      b = FACTORIES[name](this) as Built<unknown>;
      this.built.set(name, b);
      // A service that failed to open (a transient fault) is built again on the next request.
      if (b.value instanceof Promise)
        b.value.catch(() => {
          if (this.built.get(name) === b) this.built.delete(name);
        });
    }
    return b.value as Services[K];
  }

  /**
   * From now on `get` returns these services (tests). Services already built keep what they were
   * built with, so override before first use; whatever this runtime built is still closed by it.
   */
  override(given: Partial<Services>): this {
    Object.assign(this.given, given);
    return this;
  }

  get cfg(): Services['config'] {
    return this.get('config');
  }
  get log(): Services['log'] {
    return this.get('log');
  }
  get store(): Services['store'] {
    return this.get('store');
  }

  /** Releases every service this runtime built; later `get`s throw. Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    const errors: unknown[] = [];
    for (const name of CLOSE_ORDER) {
      const b = this.built.get(name);
      this.built.delete(name);
      if (b?.close) await b.close().catch((e: unknown) => errors.push(e));
    }
    if (errors.length) throw errors[0];
  }
}

let current: Runtime | undefined;

/** The process's runtime, built from the environment on first use. */
export function runtime(): Runtime {
  return (current ??= new Runtime());
}

/**
 * Installs a new process runtime with the given services (tests, the CLI). Close the previous one
 * first (`closeRuntime`) if it may hold resources.
 */
export function useRuntime(given: Partial<Services> = {}): Runtime {
  current = new Runtime(given);
  return current;
}

/** Closes the process runtime; the next `runtime()` builds a fresh one from the environment. */
export async function closeRuntime(): Promise<void> {
  const r = current;
  current = undefined;
  await r?.close();
}
