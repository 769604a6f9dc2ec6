/**
 * Loads deploy/*.tf (parsed with @cdktf/hcl2json) and deploy/generated/*.tf.json into one model, the
 * way Terraform merges a module's files, so tests can assert on the configuration without providers.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse } from '@cdktf/hcl2json';

export type Body = Record<string, unknown>;

export interface Block {
  type: string;
  name: string;
  body: Body;
  file: string;
}

export interface TfModel {
  resources: Map<string, Block>;
  data: Map<string, Block>;
  variables: Map<string, Body>;
  locals: Record<string, unknown>;
  outputs: Map<string, Body>;
  files: string[];
}

/** HCL blocks parse to one-element arrays, JSON blocks are objects: read both the same way. */
export function one(x: unknown): Body {
  const v = Array.isArray(x) ? x[0] : x;
  return (v ?? {}) as Body;
}
export function many(x: unknown): Body[] {
  if (x === undefined || x === null) return [];
  return (Array.isArray(x) ? x : [x]) as Body[];
}
/** `a.b.c` through nested blocks. */
export function at(body: Body, dotted: string): unknown {
  let cur: unknown = body;
  for (const k of dotted.split('.')) {
    if (cur === undefined || cur === null) return undefined;
    cur = one(cur)[k];
  }
  return cur;
}

export async function loadModel(dir: string): Promise<TfModel> {
  const model: TfModel = {
    resources: new Map(),
    data: new Map(),
    variables: new Map(),
    locals: {},
    outputs: new Map(),
    files: [],
  };
  const tf = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.tf'))
    .sort()
    .map((f) => path.join(dir, f));
  const genDir = path.join(dir, 'generated');
  const json = fs.existsSync(genDir)
    ? fs
        .readdirSync(genDir)
        .filter((f) => f.endsWith('.tf.json'))
        .sort()
        .map((f) => path.join(genDir, f))
    : [];
  const docs: [string, Body][] = [];
  for (const file of tf)
    docs.push([file, (await parse(path.basename(file), fs.readFileSync(file, 'utf8'))) as Body]);
  for (const file of json) docs.push([file, JSON.parse(fs.readFileSync(file, 'utf8')) as Body]);

  for (const [file, doc] of docs) {
    model.files.push(file);
    for (const [kind, target] of [
      ['resource', model.resources],
      ['data', model.data],
    ] as const) {
      for (const [type, byName] of Object.entries(
        (doc[kind] ?? {}) as Record<string, Record<string, unknown>>,
      )) {
        for (const [name, body] of Object.entries(byName)) {
          const key = `${type}.${name}`;
          if (target.has(key))
            throw new Error(`${key} declared twice (${target.get(key)?.file} and ${file})`);
          target.set(key, { type, name, body: one(body), file });
        }
      }
    }
    for (const [name, body] of Object.entries((doc.variable ?? {}) as Record<string, unknown>)) {
      if (model.variables.has(name)) throw new Error(`variable ${name} declared twice`);
      model.variables.set(name, one(body));
    }
    for (const [name, body] of Object.entries((doc.output ?? {}) as Record<string, unknown>)) {
      if (model.outputs.has(name)) throw new Error(`output ${name} declared twice`);
      model.outputs.set(name, one(body));
    }
    for (const block of many(doc.locals)) {
      for (const [name, value] of Object.entries(block)) {
        if (name in model.locals) throw new Error(`local ${name} declared twice`);
        model.locals[name] = value;
      }
    }
  }
  return model;
}

export function resourcesOfType(model: TfModel, type: string): Block[] {
  return [...model.resources.values()].filter((r) => r.type === type);
}

/** Every `${…}` template expression in a value, outermost only. */
export function expressions(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') {
    for (let i = value.indexOf('${'); i >= 0; i = value.indexOf('${', i + 1)) {
      let depth = 0;
      for (let j = i + 1; j < value.length; j++) {
        if (value[j] === '{') depth++;
        else if (value[j] === '}' && --depth === 0) {
          out.push(value.slice(i + 2, j));
          i = j;
          break;
        }
      }
    }
  } else if (Array.isArray(value)) for (const v of value) expressions(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) expressions(v, out);
  return out;
}

/** Addresses referenced by an expression: var.x, local.x, data.t.n, t.n (resources). */
export function references(expr: string): string[] {
  const noStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const refs = new Set<string>();
  for (const m of noStrings.matchAll(/\b(var|local)\.([A-Za-z_][\w-]*)/g)) refs.add(`${m[1]}.${m[2]}`);
  for (const m of noStrings.matchAll(/\bdata\.([a-z]\w*)\.([A-Za-z_][\w-]*)/g))
    refs.add(`data.${m[1]}.${m[2]}`);
  for (const m of noStrings.matchAll(/(?<![.\w])((?:google|terraform)_\w+)\.([A-Za-z_][\w-]*)/g))
    refs.add(`${m[1]}.${m[2]}`);
  return [...refs];
}

/** The literal in a `${resource.attr}` string, or undefined when it is something else. */
export function soleRef(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^\$\{([^{}]+)\}$/.exec(value);
  return m?.[1];
}
