// Errors as data: every error xdplb raises on purpose has a stable code that
// scripts and tests can rely on, and a message that says what was wrong.
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_UNREADABLE'
  | 'ABI_MISMATCH'
  | 'PIN_INCOMPATIBLE'
  | 'CAPACITY'
  | 'INTERFACE'
  | 'BPFFS'
  | 'NOT_ATTACHED'
  | 'DAEMON'
  | 'USAGE';

export class XdplbError extends Error {
  readonly code: ErrorCode;
  readonly details: readonly string[];
  constructor(code: ErrorCode, message: string, details: readonly string[] = [], options?: ErrorOptions) {
    super(message, options);
    this.name = 'XdplbError';
    this.code = code;
    this.details = details;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
