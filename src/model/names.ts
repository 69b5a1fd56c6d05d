// Names that reach the kernel or the file system from user input, checked
// once: an interface name, and a pin directory.
import { isAbsolute } from 'node:path';

/** Why name cannot be a Linux interface name, or null (the kernel's rules: 1-15 bytes, not . or .., no /, : or space). */
export function interfaceNameProblem(name: string): string | null {
  if (name.length === 0 || Buffer.byteLength(name) > 15) return 'an interface name has 1 to 15 characters';
  if (name === '.' || name === '..') return `"${name}" is not an interface name`;
  if (!/^[A-Za-z0-9._@-]+$/.test(name)) return 'an interface name has only letters, digits and . _ @ -';
  return null;
}

/** Why path cannot be a pin directory, or null: an absolute path without . or .. parts. */
export function pinDirProblem(path: string): string | null {
  if (!isAbsolute(path)) return `a pin directory is an absolute path (e.g. /sys/fs/bpf/xdplb/eth1), not "${path}"`;
  if (path.split('/').some((p) => p === '.' || p === '..')) return `a pin directory is written without . or .. parts, not ${path}`;
  return null;
}
