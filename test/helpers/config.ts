// The errors a config is refused with (each "path: message"), for table tests of the schema.
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/load.ts';
import { XdplbError } from '../../src/errors.ts';

export function configErrors(raw: unknown): string[] {
  try {
    validateConfig(raw);
  } catch (err) {
    assert.ok(err instanceof XdplbError && err.code === 'CONFIG_INVALID', String(err));
    return [...err.details];
  }
  assert.fail('expected the config to be refused');
}
