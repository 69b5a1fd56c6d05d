// The Prometheus text format (version 0.0.4), written directly: used for the
// data plane's series, which are many (one set per backend of every service)
// and change every scrape. prom-client hashes and formats each series on its
// own; at 10,000 services x 10 backends that took 5 s per scrape.

export type MetricType = 'counter' | 'gauge';

/** A label value as the text format needs it (backslash, quote, newline escaped). */
export function labelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}

/** Samples of one metric family, written as they come; header first. */
export class Family {
  readonly name: string;
  private out: string;

  constructor(name: string, type: MetricType, help: string) {
    this.name = name;
    this.out = `# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${name} ${type}\n`;
  }

  /** `labels`: `{a="x",b="y"}` (values escaped with labelValue) or ""; built once for several families. */
  sample(labels: string, value: number | bigint): void {
    this.out += `${this.name}${labels} ${typeof value === 'bigint' ? value.toString() : formatNumber(value)}\n`;
  }

  text(): string {
    return this.out;
  }
}

function formatNumber(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
