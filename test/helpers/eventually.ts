// Waiting for something that another process makes true: fn is tried every
// 100 ms (a throw counts as "not yet") until it returns a value that is not
// undefined or false, or ms pass; then the error names what was awaited, the
// last throw, and what context() adds (a daemon's log tail).
export async function eventually<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, o: { ms?: number; context?: () => string } = {}): Promise<T> {
  const deadline = Date.now() + (o.ms ?? 20_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}${o.context ? `\n${o.context()}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
