// Pure means pure: the modules that compute (model/, reconcile/, config/)
// load without the compiled addon, so they run, and are tested, where it is
// not built. A child process whose process.dlopen throws imports them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const PURE = [
  ...['model', 'reconcile', 'config', 'import'].flatMap((dir) =>
    readdirSync(`${SRC}${dir}`)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => `${SRC}${dir}/${f}`),
  ),
  `${SRC}dataplane/abi.ts`,
  `${SRC}trace/trace.ts`,
];

test('model/, reconcile/, config/, the ABI codecs and trace\'s decisions import without loading the addon', () => {
  const script = `
    process.dlopen = (module, file) => { throw new Error('the addon was loaded: ' + file); };
    for (const path of ${JSON.stringify(PURE)}) {
      try {
        await import(path);
      } catch (err) {
        process.stderr.write(path + ': ' + err.message + '\\n');
        process.exitCode = 1;
      }
    }
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, `imports loaded the addon:\n${r.stderr}`);
});
