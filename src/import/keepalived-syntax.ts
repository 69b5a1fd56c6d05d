// keepalived.conf's syntax, as keepalived 2.2's parser (lib/parser.c) reads
// it, turned into a tree of statements: a statement is the words of one line
// (a "quoted string" is one word), with the block that follows it when a
// "{" does, on its line or the next. Comments start with # or ! anywhere
// outside quotes (\# and \! are the characters); "include PATTERN" (and
// includer/includem/includew/includeb/includea) reads the files the pattern
// matches, relative to the including file's directory; a line "@ID ..." is
// kept only when ID is the config id (keepalived -i), "@^ID ..." only when it
// is not; "$NAME=VALUE" defines a parameter (ending a line with \ continues a
// multiline one) that "$NAME" or "${NAME}" is replaced by. ~SEQ and ~LST
// blocks are refused. Pure: the files an include names are read by the
// caller's resolver.
import { dirname } from 'node:path';
import { XdplbError } from '../errors.ts';

export interface Statement {
  readonly words: readonly string[];
  /** "FILE:LINE" */
  readonly origin: string;
  /** The statements of its { } block; null: it has none. */
  readonly block: readonly Statement[] | null;
}

export interface IncludedFile {
  readonly path: string;
  readonly text: string;
}

/** The files an include pattern matches (relative to dir, the including file's directory), sorted as glob() sorts them. */
export type IncludeResolver = (pattern: string, dir: string) => readonly IncludedFile[];

export interface SyntaxOptions {
  /** The file's name (its directory is where relative includes start). */
  readonly file: string;
  readonly include?: IncludeResolver;
  /** keepalived's -i: the config id that @ID lines are compared with. */
  readonly configId?: string;
}

export interface SyntaxResult {
  readonly statements: readonly Statement[];
  /** Remarks on the reading: includes that matched nothing, conditional lines left out (warning: it may not be what keepalived reads). */
  readonly remarks: readonly { readonly origin: string; readonly text: string; readonly warning: boolean }[];
}

const MAX_INCLUDE_DEPTH = 32;
const MAX_SUBSTITUTIONS = 10_000;

/** What keepalived's parser would not read either, and where. */
class SyntaxError_ extends Error {
  readonly origin: string;
  constructor(origin: string, message: string) {
    super(message);
    this.origin = origin;
  }
}

/**
 * A line without its comment, its leading and trailing blanks, and the
 * escaping of # and ! outside quotes (keepalived's decomment()). A final
 * backslash (a multiline definition goes on) is kept.
 */
function decomment(line: string): string {
  let out = '';
  let quote = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '"') quote = !quote;
    else if (c === '\\' && i + 1 < line.length) {
      const next = line[i + 1]!;
      if (!quote && (next === '#' || next === '!')) {
        out += next;
        i++;
        continue;
      }
      out += c + next;
      i++;
      continue;
    } else if (!quote && (c === '#' || c === '!')) break;
    out += c;
  }
  return out.replace(/^[ \t]+/, '').replace(/[ \t]+$/, '');
}

interface Definition {
  /** One line, or the lines of a multiline definition. */
  lines: string[];
  multiline: boolean;
}

const DEFINITION = /^\$([A-Za-z_][A-Za-z0-9_]*)=[ \t]*(.*)$/;
const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)(?=[ \t]|$)/;

/** A piece of a line as the tree is built from it: words, "{" or "}". */
type Item = { kind: 'words'; words: string[]; origin: string } | { kind: 'open' | 'close'; origin: string };

class Reader {
  readonly items: Item[] = [];
  readonly remarks: { origin: string; text: string; warning: boolean }[] = [];
  private readonly defs = new Map<string, Definition>();
  private readonly skippedIds = new Map<string, string>();
  private readonly stack: string[] = [];

  private readonly options: SyntaxOptions;

  constructor(options: SyntaxOptions) {
    this.options = options;
  }

  file(path: string, text: string): void {
    if (this.stack.includes(path)) throw new SyntaxError_(path, `includes itself (${[...this.stack, path].join(' -> ')})`);
    if (this.stack.length >= MAX_INCLUDE_DEPTH) throw new SyntaxError_(path, `includes nested deeper than ${MAX_INCLUDE_DEPTH}`);
    this.stack.push(path);
    const lines = text.split(/\r?\n/);
    let multiline: Definition | null = null;
    for (let i = 0; i < lines.length; i++) {
      const origin = `${path}:${i + 1}`;
      const line = decomment(lines[i]!);
      if (multiline) {
        // the lines of a multiline definition, up to the first that does not end with a backslash
        const more = line.endsWith('\\');
        const body = more ? line.slice(0, -1).trimEnd() : line;
        if (body) multiline.lines.push(body);
        if (!more) multiline = null;
        continue;
      }
      if (line === '') continue;
      const include = /^include([rmwba]?)[ \t]+(.*)$/.exec(line);
      if (include) {
        this.include(include[2]!.trim(), path, origin, include[1] !== '');
        continue;
      }
      multiline = this.line(line, origin, path, 0);
    }
    if (multiline) this.remarks.push({ origin: path, text: 'the file ends inside a multiline definition', warning: true });
    this.stack.pop();
  }

  finish(): void {
    const given = this.options.configId;
    for (const [tag, origin] of this.skippedIds)
      this.remarks.push({
        origin,
        text: `lines ${tag} left out: ${given === undefined ? 'no --config-id given (keepalived -i; its default is the host name)' : `the config id is "${given}"`}`,
        warning: given === undefined,
      });
  }

  private include(pattern: string, from: string, origin: string, checked: boolean): void {
    if (!this.options.include) throw new SyntaxError_(origin, `include ${pattern}: includes are not read here`);
    const files = this.options.include(pattern, dirname(from));
    if (files.length === 0) {
      this.remarks.push({ origin, text: `include ${pattern}: no file matches${checked ? '' : ' (keepalived goes on without it)'}`, warning: true });
      return;
    }
    for (const f of files) this.file(f.path, f.text);
  }

  /**
   * One line after decomment: conditional (@ID), definition ($NAME=),
   * substitution, then its pieces. Returns the definition a line ending with
   * a backslash starts, whose next lines are its own.
   */
  private line(text: string, origin: string, path: string, depth: number): Definition | null {
    let line = text;
    for (let round = 0; ; round++) {
      if (round > 100) throw new SyntaxError_(origin, 'parameter substitution does not end');
      if (line.startsWith('@')) {
        const negate = line[1] === '^';
        const m = /^@\^?([^ \t]*)[ \t]+(.*)$/.exec(line);
        if (!m) return null;
        const matches = this.options.configId !== undefined && m[1] === this.options.configId;
        if (matches === negate) {
          const tag = `@${negate ? '^' : ''}${m[1]}`;
          if (!this.skippedIds.has(tag)) this.skippedIds.set(tag, origin);
          return null;
        }
        line = m[2]!;
      }
      const def = DEFINITION.exec(line);
      if (def) {
        const value = def[2]!;
        const multiline = value.endsWith('\\');
        const first = multiline ? value.slice(0, -1).trimEnd() : value;
        const d: Definition = { lines: first || !multiline ? [first] : [], multiline };
        this.defs.set(def[1]!, d);
        return multiline ? d : null;
      }
      if (/^~(SEQ|LST)/.test(line)) throw new SyntaxError_(origin, `${line.slice(0, 4)} blocks are not supported by xdplb import: write out the lines they stand for`);
      if (!line.includes('$')) break;
      const replaced = this.substitute(line, origin, path, depth);
      if (replaced === null) return null; // a multiline definition, expanded line by line
      if (replaced === line) break;
      line = decomment(replaced);
      if (!line.startsWith('@') && !line.includes('$')) break;
    }
    if (line !== '') this.pieces(line, origin);
    return null;
  }

  /** The line with its parameters replaced (recursively, as keepalived does); null when a multiline one took it over. */
  private substitute(line: string, origin: string, path: string, depth: number): string | null {
    let out = line;
    let from = 0;
    for (let n = 0; n < MAX_SUBSTITUTIONS; n++) {
      const rest = out.slice(from);
      const m = REFERENCE.exec(rest);
      if (!m) return out;
      const name = m[1] ?? m[2]!;
      const at = from + m.index;
      const def = this.definition(name, path);
      if (!def) {
        from = at + 1; // undefined: left as it is
        continue;
      }
      if (def.multiline) {
        if (depth > 20) throw new SyntaxError_(origin, `multiline definition $${name} nested too deep`);
        const [first = '', ...others] = def.lines;
        for (const l of [out.slice(0, at) + first, ...others]) {
          const d = decomment(l);
          if (d) this.line(d, origin, path, depth + 1);
        }
        return null;
      }
      out = out.slice(0, at) + def.lines[0]! + out.slice(at + m[0].length);
      from = at; // the value may hold parameters of its own
    }
    throw new SyntaxError_(origin, 'parameter substitution does not end');
  }

  private definition(name: string, path: string): Definition | undefined {
    const d = this.defs.get(name);
    if (d) return d;
    if (name === '_PWD') return { lines: [dirname(path)], multiline: false };
    if (name === '_HASH') return { lines: ['#'], multiline: false };
    if (name === '_BANG') return { lines: ['!'], multiline: false };
    if (name === '_INSTANCE' && this.options.configId !== undefined) return { lines: [this.options.configId], multiline: false };
    return undefined;
  }

  /** A line cut at every { and } outside quotes (keepalived's read_line), each piece split into words. */
  private pieces(line: string, origin: string): void {
    let start = 0;
    let quote = false;
    for (let i = 0; i <= line.length; i++) {
      const c = line[i];
      if (c === '"') quote = !quote;
      if (i === line.length || (!quote && (c === '{' || c === '}'))) {
        const text = line.slice(start, i).trim();
        if (text) this.items.push({ kind: 'words', words: words(text, origin), origin });
        if (i < line.length) this.items.push({ kind: c === '{' ? 'open' : 'close', origin });
        start = i + 1;
      }
    }
    if (quote) throw new SyntaxError_(origin, 'a quote that is not closed');
  }
}

/** The words of a piece: blank-separated, a "quoted string" one word without its quotes (alloc_strvec). */
function words(text: string, origin: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (i >= text.length) break;
    if (text[i] === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0) throw new SyntaxError_(origin, 'a quote that is not closed');
      out.push(text.slice(i + 1, end));
      i = end + 1;
    } else {
      let j = i;
      while (j < text.length && text[j] !== ' ' && text[j] !== '\t' && text[j] !== '"') j++;
      out.push(text.slice(i, j));
      i = j;
    }
  }
  return out;
}

interface Frame {
  readonly statements: Statement[];
  readonly opener: { origin: string; words: readonly string[] } | null;
}

/** The tree of the items: a "{" opens the block of the statement just before it. */
function tree(items: readonly Item[]): Statement[] {
  const root: Frame = { statements: [], opener: null };
  const stack: Frame[] = [root];
  let previous: Item | null = null;
  for (const item of items) {
    const top = stack[stack.length - 1]!;
    if (item.kind === 'words') top.statements.push({ words: item.words, origin: item.origin, block: null });
    else if (item.kind === 'open') {
      const last = top.statements[top.statements.length - 1];
      if (previous?.kind !== 'words' || !last || last.block !== null) throw new SyntaxError_(item.origin, "a '{' with no keyword before it");
      const block: Statement[] = [];
      top.statements[top.statements.length - 1] = { ...last, block };
      stack.push({ statements: block, opener: last });
    } else {
      if (stack.length === 1) throw new SyntaxError_(item.origin, "a '}' that closes no block");
      stack.pop();
    }
    previous = item;
  }
  if (stack.length > 1) {
    const open = stack[stack.length - 1]!.opener!;
    throw new SyntaxError_(open.origin, `the block of "${open.words.join(' ')}" is not closed ('}' missing)`);
  }
  return root.statements;
}

/** The statements of a keepalived.conf (and the files it includes); CONFIG_UNREADABLE for what keepalived would not read either. */
export function parseKeepalivedSyntax(text: string, options: SyntaxOptions): SyntaxResult {
  const reader = new Reader(options);
  try {
    reader.file(options.file, text);
    reader.finish();
    return { statements: tree(reader.items), remarks: reader.remarks };
  } catch (err) {
    if (!(err instanceof SyntaxError_)) throw err;
    const detail = `${err.origin}: ${err.message}`;
    throw new XdplbError('CONFIG_UNREADABLE', `${options.file} is not a keepalived configuration xdplb can read:\n  ${detail}`, [detail]);
  }
}
