// The configuration file: the director's settings and its static services.
// Read (and validated) on demand; watched for changes. The directory is
// watched, not the file: editors, configuration management and Kubernetes
// ConfigMap volumes replace a file by renaming another over it, which ends a
// watch on the file itself after the first change. A change is noticed by
// the file's stamp (inode, size, mtime), so a touch does not reload.
import { statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { loadConfig, type ConfigOverrides } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { ServiceSource } from './source.ts';

/** What identifies a version of a file cheaply: inode, size, mtime ("" when it cannot be read). */
function fileStamp(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}/${s.size}/${s.mtimeMs}`;
  } catch {
    return '';
  }
}

export class ConfigFile {
  readonly path: string;
  private readonly overrides: ConfigOverrides;
  private readonly log: Logger;
  /** The stamp of the version last read (taken before reading: a change from then on is noticed). */
  private stamp = '';
  private watcher: FSWatcher | null = null;
  private debounce: NodeJS.Timeout | null = null;

  constructor(path: string, overrides: ConfigOverrides, log: Logger) {
    this.path = path;
    this.overrides = overrides;
    this.log = log;
  }

  /** Reads and validates the file (with the command line's overrides); throws CONFIG_INVALID / CONFIG_UNREADABLE. */
  async read(): Promise<Config> {
    this.stamp = fileStamp(this.path);
    return loadConfig(this.path, this.overrides);
  }

  /** Calls onChange (debounced) whenever the file is not the version last read, from now on. */
  watch(onChange: () => void): void {
    const name = basename(this.path);
    try {
      this.watcher = watch(dirname(this.path), (_event, file) => {
        // a ConfigMap volume swaps its "..data" link; anything else in the directory is not ours
        if (file === null || file === name || file.startsWith('..')) this.maybeChanged(onChange);
      });
    } catch (err) {
      this.log.warn({ err }, 'cannot watch the config file; reload with SIGHUP');
    }
    this.maybeChanged(onChange); // changed between the last read and the watch
  }

  close(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.watcher?.close();
    this.watcher = null;
  }

  private maybeChanged(onChange: () => void): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      if (fileStamp(this.path) !== this.stamp) onChange(); // else touched, not changed
    }, 200);
  }
}

/** The static services of a config file, as a source. */
export function fileServices(path: string, config: Config): ServiceSource {
  return { name: `config ${path}`, services: () => config.services };
}
