/**
 * The model graph, built from each model's inputs (the tables it reads with @ref/@batch). Sources
 * are Bronze tables (loaded from files) and event tables (written by routeEvent); everything else
 * must be a model.
 */
import { permanent } from '../errors';
import type { Model } from './model';

export class ModelGraph {
  /** Models in dependency order (inputs before the models reading them; ties by name). */
  readonly order: Model[];
  private readonly byKey: Map<string, Model>;
  private readonly readers = new Map<string, Model[]>();

  constructor(models: Model[]) {
    this.byKey = new Map(models.map((m) => [m.key, m]));
    for (const m of models) {
      for (const inp of m.inputs) {
        const layer = inp.split('.')[0];
        if (!this.byKey.has(inp) && layer !== 'bronze' && layer !== 'events')
          throw permanent(
            'MODEL_FAILED',
            `${m.file}: input ${inp} is neither a source (bronze.*, events.*) nor a model`,
          );
        if (inp === m.key)
          throw permanent('MODEL_FAILED', `${m.file}: a model cannot list itself as an input (use @this)`);
        const r = this.readers.get(inp) ?? [];
        r.push(m);
        this.readers.set(inp, r);
      }
    }
    this.order = topoSort(models, this.byKey);
  }

  get(key: string): Model | undefined {
    return this.byKey.get(key);
  }

  get models(): Model[] {
    return this.order;
  }

  /** Source tables (bronze.*, events.*) the graph reads. */
  sources(): string[] {
    return [...this.readers.keys()].filter((k) => !this.byKey.has(k)).sort();
  }

  /** Models reading `table` directly. */
  readersOf(table: string): Model[] {
    return this.readers.get(table) ?? [];
  }

  /** Every model downstream of the given tables, in dependency order. */
  downstreamOf(tables: Iterable<string>): Model[] {
    const hit = new Set<string>();
    const stack = [...tables];
    while (stack.length) {
      const t = stack.pop() as string;
      for (const m of this.readersOf(t)) {
        if (!hit.has(m.key)) {
          hit.add(m.key);
          stack.push(m.key);
        }
      }
    }
    return this.order.filter((m) => hit.has(m.key));
  }

  /** The sources a model ultimately reads. */
  sourcesOf(m: Model): string[] {
    const out = new Set<string>();
    const visit = (k: string): void => {
      const mm = this.byKey.get(k);
      if (!mm) out.add(k);
      else for (const i of mm.inputs) visit(i);
    };
    for (const i of m.inputs) visit(i);
    return [...out].sort();
  }
}

function topoSort(models: Model[], byKey: Map<string, Model>): Model[] {
  const state = new Map<string, 'visiting' | 'done'>();
  const out: Model[] = [];
  const visit = (m: Model, path: string[]): void => {
    const s = state.get(m.key);
    if (s === 'done') return;
    if (s === 'visiting')
      throw permanent('MODEL_FAILED', `Models form a cycle: ${[...path, m.key].join(' → ')}`);
    state.set(m.key, 'visiting');
    for (const inp of [...m.inputs].sort()) {
      const dep = byKey.get(inp);
      if (dep) visit(dep, [...path, m.key]);
    }
    state.set(m.key, 'done');
    out.push(m);
  };
  for (const m of [...models].sort((a, b) => a.key.localeCompare(b.key))) visit(m, []);
  return out;
}
