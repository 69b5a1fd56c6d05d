// Imports run one way. The folders of src/ form layers: no two folders
// import each other, directly or through others (type-only imports count:
// they tie the layers as much as the others do). And the pure code does not
// reach the addon: no module of model/ or reconcile/ leads, through imports
// that run (not type-only ones), to dataplane/native.ts.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Imports between files that run upward and are being removed, as [importer, imported] under src/ (none left). */
const KNOWN_UPWARD: readonly (readonly [string, string])[] = [];

interface Import {
  /** The module named, as written. */
  specifier: string;
  /** Erased when the code runs (`import type`, `export type`). */
  typeOnly: boolean;
}

/** The imports of a module's text: static imports and re-exports (type-only or not), side-effect and dynamic imports. */
export function importsOf(text: string): Import[] {
  const out: Import[] = [];
  const from = /^\s*(?:import|export)\s+(type\s+)?(?:[\w$*{}\s,]+?)\s+from\s+['"]([^'"]+)['"]/gm;
  for (const m of text.matchAll(from)) out.push({ specifier: m[2]!, typeOnly: m[1] !== undefined });
  for (const m of text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) out.push({ specifier: m[1]!, typeOnly: false });
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push({ specifier: m[1]!, typeOnly: false });
  return out;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(`${dir}/${e.name}`) : e.name.endsWith('.ts') ? [`${dir}/${e.name}`] : []));
}

/** Every import from one file of src/ to another, by path under src/. */
function graph(): { from: string; to: string; typeOnly: boolean }[] {
  const edges: { from: string; to: string; typeOnly: boolean }[] = [];
  for (const file of sourceFiles(SRC.slice(0, -1))) {
    for (const i of importsOf(readFileSync(file, 'utf8'))) {
      if (!i.specifier.startsWith('.')) continue;
      const to = relative(SRC, resolve(dirname(file), i.specifier));
      if (!to.startsWith('..')) edges.push({ from: relative(SRC, file), to, typeOnly: i.typeOnly });
    }
  }
  return edges;
}

/** The folder of a path under src/ ("." for the files at its top). */
function folderOf(path: string): string {
  return path.includes('/') ? path.slice(0, path.indexOf('/')) : '.';
}

/** The sets of folders that import each other, directly or not (strongly connected, more than one). */
function folderCycles(edges: readonly { from: string; to: string }[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const e of edges) {
    const [a, b] = [folderOf(e.from), folderOf(e.to)];
    if (!next.has(a)) next.set(a, new Set());
    if (!next.has(b)) next.set(b, new Set());
    if (a !== b) next.get(a)!.add(b);
  }
  // Tarjan's strongly connected components
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) cycles.push(component.sort());
    }
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

/** A chain of runtime imports from `start` to `target`, or null. */
function runtimePath(edges: readonly { from: string; to: string; typeOnly: boolean }[], start: string, target: string): string[] | null {
  const seen = new Set<string>([start]);
  const queue: string[][] = [[start]];
  while (queue.length > 0) {
    const path = queue.shift()!;
    const at = path[path.length - 1]!;
    if (at === target) return path;
    for (const e of edges)
      if (e.from === at && !e.typeOnly && !seen.has(e.to)) {
        seen.add(e.to);
        queue.push([...path, e.to]);
      }
  }
  return null;
}

describe('imports', () => {
  test('the import lines are read as the compiler reads them', () => {
    const text = [
      "import { a, type B } from './a.ts';",
      "import type { C } from '../c.ts';",
      'import {',
      '  d,',
      '  e,',
      "} from './d.ts';",
      "export type { F } from './f.ts';",
      "export { g } from './g.ts';",
      "import './side-effect.ts';",
      "const x = await import('./lazy.ts');",
      "// import { no } from './comment.ts' in a comment is not an import",
      "const s = 'import { z } from \"./string.ts\"';",
      'export const h = 1;',
      "export function i() { return 'from'; }",
    ].join('\n');
    assert.deepEqual(
      importsOf(text).map((i) => `${i.specifier}${i.typeOnly ? ' (type)' : ''}`).sort(),
      ['../c.ts (type)', './a.ts', './d.ts', './f.ts (type)', './g.ts', './lazy.ts', './side-effect.ts'],
    );
  });

  test('no two folders of src/ import each other, directly or through others', () => {
    const edges = graph().filter((e) => !KNOWN_UPWARD.some(([from, to]) => e.from === from && e.to === to));
    const cycles = folderCycles(edges);
    const explain = cycles.map((folders) => {
      const inside = edges.filter((e) => folders.includes(folderOf(e.from)) && folders.includes(folderOf(e.to)) && folderOf(e.from) !== folderOf(e.to));
      return `${folders.join(' <-> ')}:\n    ${inside.map((e) => `${e.from} -> ${e.to}${e.typeOnly ? ' (type)' : ''}`).join('\n    ')}`;
    });
    assert.deepEqual(explain, [], `folders that import each other:\n  ${explain.join('\n  ')}`);
  });

  test('the known upward imports are still there (remove them from KNOWN_UPWARD once fixed)', () => {
    const edges = graph();
    for (const [from, to] of KNOWN_UPWARD) assert.ok(edges.some((e) => e.from === from && e.to === to), `${from} no longer imports ${to}: take it out of KNOWN_UPWARD`);
  });

  test('no module of model/ or reconcile/ reaches the addon through imports that run', () => {
    const edges = graph();
    const pure = [...new Set(edges.flatMap((e) => [e.from, e.to]))].filter((f) => /^(model|reconcile)\//.test(f));
    assert.ok(pure.length >= 8, `model/ and reconcile/ found: ${pure.join(', ')}`);
    const reaching = pure.map((f) => runtimePath(edges, f, 'dataplane/native.ts')).filter((p) => p !== null);
    assert.deepEqual(reaching.map((p) => p.join(' -> ')), []);
  });
});
