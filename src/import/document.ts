// An imported configuration as `xdplb import` prints it: services in the
// config's input form, each with the comments that say where it came from
// and how it behaves differently from the original, and the warnings that
// also go to stderr. Rendered as YAML that the config schema accepts (the
// result is validated before it is printed). Pure.
import { CORE_SCHEMA, dump } from 'js-yaml';
import { XdplbError } from '../errors.ts';
import { parseConfigText, validateConfig } from '../config/load.ts';
import type { ConfigInput } from '../config/schema.ts';

export type ServiceInput = NonNullable<ConfigInput['services']>[number];
export type BackendInput = NonNullable<ServiceInput['backends']>[number];
export type HealthCheckInput = NonNullable<ServiceInput['healthCheck']>;

/** A remark on the import: a comment in the YAML; a warning is also printed on stderr. */
export interface Note {
  readonly text: string;
  readonly warning: boolean;
}

export const note = (text: string): Note => ({ text, warning: false });
export const warning = (text: string): Note => ({ text, warning: true });

export interface ImportedBackend {
  readonly backend: BackendInput;
  readonly notes: readonly Note[];
}

export interface ImportedService {
  /** Where in the input it came from: "line 3", "keepalived.conf:14". */
  readonly origin: string;
  /** What it came from, as written (the first comment above it). */
  readonly source: string;
  readonly service: Omit<ServiceInput, 'backends'>;
  readonly backends: readonly ImportedBackend[];
  readonly notes: readonly Note[];
}

/** Something in the input that gave no service: a comment where it stood. */
export interface SkippedEntry {
  readonly origin: string;
  readonly source: string;
  readonly notes: readonly Note[];
}

export type Entry = { readonly kind: 'service'; readonly imported: ImportedService } | { readonly kind: 'skipped'; readonly skipped: SkippedEntry };

/** A top-level setting: printed as `key: value`, or commented out as a suggestion. */
export interface Setting {
  readonly key: string;
  readonly value: unknown;
  readonly comment: string;
  readonly commentedOut: boolean;
}

export interface ImportedConfig {
  /** The first lines: what was imported, from where. */
  readonly header: readonly string[];
  readonly settings: readonly Setting[];
  readonly entries: readonly Entry[];
  /** Remarks on the input as a whole (printed after the header). */
  readonly notes: readonly { readonly origin: string; readonly note: Note }[];
}

/** A warning as printed on stderr: "ORIGIN: TEXT". */
export interface Warning {
  readonly origin: string;
  readonly text: string;
}

/** "1 service", "3 services". */
export function count(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

/** A text that starts with its own place ("keepalived.conf:40: ..."), printed without the service's. */
const PLACED = /^[^\s:]+:\d+: /;
const placed = (n: Note): Warning | null => (PLACED.test(n.text) ? { origin: n.text.slice(0, n.text.indexOf(': ')), text: n.text.slice(n.text.indexOf(': ') + 2) } : null);

const WIDTH = 118;

/** Comment lines for a text, wrapped at WIDTH (a word longer than that stays whole). */
function commentLines(text: string, indent: string, first = '# ', rest = '#   '): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const lead = out.length === 0 ? first : rest;
    if (line && indent.length + lead.length + line.length + 1 + word.length > WIDTH) {
      out.push(`${indent}${lead}${line}`);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  out.push(`${indent}${out.length === 0 ? first : rest}${line}`);
  return out;
}

function noteLines(n: Note, indent: string): string[] {
  return commentLines(n.warning ? `WARNING: ${n.text}` : n.text, indent);
}

/** A value in YAML flow style, on one line. */
function flow(value: unknown): string {
  return dump(value, { flowLevel: 0, lineWidth: -1, schema: CORE_SCHEMA }).trimEnd();
}

function renderService(s: ImportedService): string[] {
  const out: string[] = [];
  out.push(...commentLines(`${s.origin}: ${s.source}`, '  '));
  for (const n of s.notes) out.push(...noteLines(n, '  '));
  const { healthCheck, ...fields } = s.service;
  let first = true;
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    out.push(`  ${first ? '- ' : '  '}${k}: ${flow(v)}`);
    first = false;
  }
  out.push(`    backends:${s.backends.length === 0 ? ' []' : ''}`);
  for (const b of s.backends) {
    for (const n of b.notes) out.push(...noteLines(n, '      '));
    out.push(`      - ${flow(b.backend)}`);
  }
  if (healthCheck !== undefined) out.push(`    healthCheck: ${flow(healthCheck)}`);
  return out;
}

/** The YAML text of an imported configuration. */
export function renderImported(c: ImportedConfig): string {
  const out: string[] = [];
  for (const h of c.header) out.push(...commentLines(h, '', '# ', '# '));
  for (const { origin, note: n } of c.notes) out.push(...commentLines(`${n.warning ? 'WARNING: ' : ''}${origin ? `${origin}: ` : ''}${n.text}`, ''));
  for (const s of c.settings) {
    const line = `${s.commentedOut ? '# ' : ''}${s.key}: ${flow(s.value)}`;
    out.push(`${line}  # ${s.comment}`);
  }
  const services = c.entries.filter((e) => e.kind === 'service');
  out.push(`services:${services.length === 0 ? ' []' : ''}`);
  for (const e of c.entries) {
    if (e.kind === 'service') out.push(...renderService(e.imported));
    else {
      out.push(...commentLines(`not imported: ${e.skipped.origin}: ${e.skipped.source}`, '  '));
      for (const n of e.skipped.notes) out.push(...noteLines(n, '  '));
    }
  }
  return `${out.join('\n')}\n`;
}

/** The warnings of an imported configuration, in the order of the input. */
export function importWarnings(c: ImportedConfig): Warning[] {
  const out: Warning[] = c.notes.filter((n) => n.note.warning).map((n) => ({ origin: n.origin, text: n.note.text }));
  for (const e of c.entries) {
    if (e.kind === 'skipped') {
      const reasons = e.skipped.notes.filter((n) => n.warning);
      out.push({ origin: e.skipped.origin, text: `not imported: ${e.skipped.source}${reasons.length ? `: ${reasons.map((n) => n.text).join('; ')}` : ''}` });
      continue;
    }
    const s = e.imported;
    for (const n of s.notes) if (n.warning) out.push(placed(n) ?? { origin: s.origin, text: n.text });
    for (const b of s.backends) for (const n of b.notes) if (n.warning) out.push(placed(n) ?? { origin: s.origin, text: `${b.backend.address}: ${n.text}` });
  }
  // a group's services share their virtual_server's warnings: each once
  const seen = new Set<string>();
  return out.filter((w) => !seen.has(`${w.origin}\n${w.text}`) && (seen.add(`${w.origin}\n${w.text}`), true));
}

/**
 * The YAML text and the warnings, once the text is known to validate: a
 * config the importer could not express is its defect, reported as such
 * rather than printed. Refused (CONFIG_INVALID, listing every reason) when
 * nothing in the input gave a service.
 */
export function finishImport(c: ImportedConfig, source: string): { text: string; warnings: Warning[] } {
  const warnings = importWarnings(c);
  if (!c.entries.some((e) => e.kind === 'service')) {
    const reasons = warnings.map((w) => `${w.origin}: ${w.text}`);
    const details = reasons.length ? reasons : ['no services in it'];
    throw new XdplbError('CONFIG_INVALID', `${source}: nothing to import:\n  ${details.join('\n  ')}`, details);
  }
  const text = renderImported(c);
  try {
    validateConfig(parseConfigText(text, 'the imported config'), {}, 'the imported config');
  } catch (err) {
    throw new Error(`xdplb import made a config that does not validate (a defect: please report it with the input): ${(err as Error).message}`, { cause: err });
  }
  return { text, warnings };
}
