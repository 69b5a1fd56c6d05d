// Reading, merging and validating a configuration. Every error names the
// field path and what was expected; nothing half-valid comes out.
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { CORE_SCHEMA, load, YAMLException } from 'js-yaml';
import type { z } from 'zod';
import { XdplbError } from '../errors.ts';
import { ConfigSchema, type Config } from './schema.ts';

/**
 * The largest config file xdplb reads: 32 MiB, and 16 MiB of it in YAML.
 * 10,000 services of 10 backends, each with an HTTP check, take 7 MiB in YAML
 * and 6-16 MiB in JSON (compact to indented by 4). Reading costs memory: a
 * peak RSS (Node's own ~50 MiB included) of ~11 bytes per byte of JSON and
 * ~48 per byte of YAML (js-yaml holds every parser event of the document at
 * once), so a file at either cap stays under ~0.8 GB (a 50 MB YAML file took
 * 2 GB); a larger config is written as JSON.
 */
export const MAX_CONFIG_BYTES = 32 * 1024 * 1024;
export const MAX_YAML_BYTES = 16 * 1024 * 1024;

const MiB = (n: number) => `${n / 1048576} MiB`;

/** Overrides from the command line, merged over the file before validation. */
export interface ConfigOverrides {
  interface?: string;
  mode?: string;
  metricsAddress?: string;
  metricsPerBackend?: boolean;
  apiAddress?: string;
  /** --kubeconfig: turns the Kubernetes mode on (a `kubernetes:` section with its defaults, if the file has none). */
  kubeconfig?: string;
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${String(p)}` : String(p)), '') || '(top level)';
}

function describe(issue: z.core.$ZodIssue): string {
  return `${formatPath(issue.path)}: ${issue.message}`;
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object') {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** Validates a parsed document (plus overrides); throws CONFIG_INVALID listing every problem. */
export function validateConfig(raw: unknown, overrides: ConfigOverrides = {}, source = 'config'): Config {
  const { kubeconfig, ...flat } = overrides;
  const defined: Record<string, unknown> = Object.fromEntries(Object.entries(flat).filter(([, v]) => v !== undefined));
  const doc = raw === null || raw === undefined ? {} : raw;
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (kubeconfig !== undefined && isObject(doc)) defined.kubernetes = isObject(doc.kubernetes) ? { ...doc.kubernetes, kubeconfig } : doc.kubernetes === undefined || doc.kubernetes === null ? { kubeconfig } : doc.kubernetes;
  const merged = isObject(doc) ? { ...doc, ...defined } : doc;
  const r = ConfigSchema.safeParse(merged);
  if (!r.success) {
    const details = r.error.issues.map(describe);
    throw new XdplbError('CONFIG_INVALID', `${source} is invalid:\n  ${details.join('\n  ')}`, details);
  }
  return deepFreeze(r.data);
}

/** Whether the character at i is escaped: preceded by an odd number of backslashes. */
function escaped(text: string, i: number): boolean {
  let n = 0;
  while (text.charCodeAt(i - 1 - n) === 0x5c) n++;
  return n % 2 === 1;
}

/** Whether c is JSON whitespace. */
function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * The keys in a JSON text (valid JSON: JSON.parse read it): strings followed
 * by ":". Outside strings JSON has no quotes, so the quotes pair up from the
 * start; no allocation, so no garbage collection moving a document just read.
 */
function countTextKeys(text: string): number {
  let keys = 0;
  for (let open = text.indexOf('"'); open >= 0; open = text.indexOf('"', open + 1)) {
    let close = text.indexOf('"', open + 1);
    while (escaped(text, close)) close = text.indexOf('"', close + 1);
    let next = close + 1;
    while (isJsonSpace(text.charCodeAt(next))) next++;
    if (text.charCodeAt(next) === 0x3a) keys++;
    open = close;
  }
  return keys;
}

/** The keys of every object in a parsed JSON document. */
function countDocumentKeys(v: unknown): number {
  if (!v || typeof v !== 'object') return 0;
  let keys = 0;
  if (Array.isArray(v)) for (const x of v) keys += countDocumentKeys(x);
  else for (const k in v) keys += 1 + countDocumentKeys((v as Record<string, unknown>)[k]); // for-in: no array per object
  return keys;
}

/** One open object (its keys so far, and the one whose value is being read) or array (the index being read). */
type Frame = { keys: Set<string>; at: string } | { keys: null; at: number };

/**
 * The first key that appears twice in one object of a JSON text, with the
 * path of that object and the key's offset; null when none does. JSON.parse
 * keeps the last one without a word, YAML refuses them. The text must be
 * valid JSON, and doc what JSON.parse made of it: a key repeated in an
 * object is the one way the document has fewer keys than the text, so
 * counting both (~35 ms for the 11 MiB JSON of 10,000 services of 10
 * backends, JSON.parse itself: ~60 ms) settles it; only then is the text
 * walked object by object to say where.
 */
export function duplicateJsonKey(text: string, doc: unknown): { key: string; path: (string | number)[]; offset: number } | null {
  if (countTextKeys(text) === countDocumentKeys(doc)) return null;
  const stack: Frame[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let end = text.indexOf('"', i + 1);
      while (escaped(text, end)) end = text.indexOf('"', end + 1);
      const top = stack[stack.length - 1];
      if (expectKey && top?.keys) {
        const raw = text.slice(i + 1, end);
        const key = raw.includes('\\') ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        if (top.keys.has(key)) return { key, path: stack.slice(0, -1).map((f) => f.at), offset: i };
        top.keys.add(key);
        top.at = key;
        expectKey = false;
      }
      i = end;
    } else if (c === 0x7b) {
      stack.push({ keys: new Set(), at: '' });
      expectKey = true;
    } else if (c === 0x5b) stack.push({ keys: null, at: 0 });
    else if (c === 0x7d || c === 0x5d) stack.pop();
    else if (c === 0x2c) {
      const top = stack[stack.length - 1];
      if (top?.keys) expectKey = true;
      else if (top) top.at++;
    }
  }
  return null;
}

/** "line L, column C" of an offset in a text (both from 1), as the YAML parser says it. */
function lineColumn(text: string, offset: number): string {
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) line++;
  return `line ${line}, column ${offset - text.lastIndexOf('\n', offset - 1)}`;
}

function unreadable(source: string, detail: string, cause?: unknown): XdplbError {
  return new XdplbError('CONFIG_UNREADABLE', `${source} is not valid YAML or JSON:\n  ${detail}`, [detail], cause === undefined ? {} : { cause });
}

/**
 * Parses YAML (or JSON, a subset of it) text. A JSON document is read by
 * JSON.parse first (a generated config of 10,000 services, 11 MiB: 0.16 s,
 * against 1.2 s through the YAML parser), then checked for duplicate keys;
 * anything else, and any JSON error, goes to the YAML parser (at most
 * MAX_YAML_BYTES), whose errors name the line. Duplicate keys are errors
 * either way, at any depth (test/config/load.test.ts).
 */
export function parseConfigText(text: string, source: string): unknown {
  let jsonError: Error | undefined;
  if (/^\s*\{/.test(text)) {
    let doc: unknown;
    try {
      doc = JSON.parse(text) as unknown;
    } catch (err) {
      jsonError = err as Error; // the YAML parser says where, better
    }
    if (doc !== undefined) {
      const dup = duplicateJsonKey(text, doc);
      if (dup) throw unreadable(source, `${lineColumn(text, dup.offset)}: duplicated key "${dup.key}" in ${formatPath(dup.path)}`);
      return doc;
    }
  }
  if (Buffer.byteLength(text) > MAX_YAML_BYTES) {
    if (jsonError) throw unreadable(source, jsonError.message, jsonError);
    throw new XdplbError('CONFIG_UNREADABLE', `${source} is over ${MiB(MAX_YAML_BYTES)} of YAML, the most xdplb parses as YAML: write a config this large as JSON (up to ${MiB(MAX_CONFIG_BYTES)})`);
  }
  try {
    // the core schema: plain YAML 1.2 values (no dates, no binary, no merge keys)
    return load(text, { filename: source, schema: CORE_SCHEMA });
  } catch (err) {
    if (!(err instanceof YAMLException)) throw err;
    throw unreadable(source, `${err.mark ? `line ${err.mark.line + 1}, column ${err.mark.column + 1}: ` : ''}${err.reason}`, err);
  }
}

/** How long a pipe may stay silent while its config is read. */
const PIPE_IDLE_MS = 10_000;

/**
 * The text of a config file, refused beyond MAX_CONFIG_BYTES (read in pieces,
 * so a pipe is capped too). Opened without blocking: a named pipe that no
 * process writes to reads as empty instead of hanging the open (where not
 * even SIGTERM ends the wait), and one that stays silent for PIPE_IDLE_MS
 * is refused.
 */
async function readConfigFile(path: string): Promise<string> {
  const file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await file.stat();
    if (st.isDirectory()) throw new XdplbError('CONFIG_UNREADABLE', `${path} is a directory, not a config file`);
    const pieces: Buffer[] = [];
    let size = 0;
    let idleSince = Date.now();
    for (;;) {
      let bytesRead: number;
      let buffer: Buffer;
      try {
        ({ bytesRead, buffer } = await file.read(Buffer.allocUnsafe(1 << 20), 0, 1 << 20, null));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        if (Date.now() - idleSince > PIPE_IDLE_MS) throw new XdplbError('CONFIG_UNREADABLE', `${path}: nothing came for ${PIPE_IDLE_MS / 1000} s (a pipe nobody writes to?)`);
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      idleSince = Date.now();
      if (bytesRead === 0) return Buffer.concat(pieces, size).toString('utf8');
      size += bytesRead;
      if (size > MAX_CONFIG_BYTES)
        throw new XdplbError('CONFIG_UNREADABLE', `${path} is larger than ${MiB(MAX_CONFIG_BYTES)}, the most a config file may be (10,000 services of 10 backends take under 20 MiB)`);
      pieces.push(buffer.subarray(0, bytesRead));
    }
  } finally {
    await file.close();
  }
}

/** The parsed document of a config file; its text is garbage once this returns (a large file is not held during validation). */
async function readConfigDocument(path: string): Promise<unknown> {
  if (path === '') throw new XdplbError('CONFIG_UNREADABLE', 'no config file: its path is empty');
  let text: string;
  try {
    text = await readConfigFile(path);
  } catch (err) {
    if (err instanceof XdplbError) throw err;
    throw new XdplbError('CONFIG_UNREADABLE', `cannot read ${path}: ${(err as Error).message}`, [], { cause: err });
  }
  return parseConfigText(text, path);
}

export async function loadConfig(path: string, overrides: ConfigOverrides = {}): Promise<Config> {
  return validateConfig(await readConfigDocument(path), overrides, path);
}
