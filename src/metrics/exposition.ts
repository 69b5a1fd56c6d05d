// The Prometheus text format (version 0.0.4), written directly: used for the
// data plane's series, which are many (one set per backend of every service)
// and change every scrape. prom-client hashes and formats each series on its
// own; at 10,000 services x 10 backends that took 5 s per scrape.

export type MetricType = 'counter' | 'gauge';

/** A label value as the text format needs it (backslash, quote, newline escaped). */
export function labelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}

/**
 * Text of a scrape gathered into chunks of about CHUNK_BYTES, to be written
 * out as each fills: the whole text of a large fleet (~95 MB at 10,000
 * services x 10 backends) is never held at once.
 */
export class Chunks {
  static readonly CHUNK_BYTES = 256 * 1024;
  private buf = '';

  add(text: string): void {
    this.buf += text;
  }

  /** Whether a chunk is ready to be taken. */
  get full(): boolean {
    return this.buf.length >= Chunks.CHUNK_BYTES;
  }

  take(): string {
    const b = this.buf;
    this.buf = '';
    return b;
  }
}

/** Samples of one metric family, written into `out` as they come; header first (on construction). */
export class Family {
  readonly name: string;
  private readonly out: Chunks;

  constructor(out: Chunks, name: string, type: MetricType, help: string) {
    this.name = name;
    this.out = out;
    out.add(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${name} ${type}\n`);
  }

  /** `labels`: `{a="x",b="y"}` (values escaped with labelValue) or ""; built once for several families. */
  sample(labels: string, value: number | bigint): void {
    this.out.add(`${this.name}${labels} ${typeof value === 'bigint' ? value.toString() : formatNumber(value)}\n`);
  }
}

function formatNumber(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
