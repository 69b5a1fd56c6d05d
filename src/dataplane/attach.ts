// The XDP attachment, pinned beside the maps: attach it once, and from then
// on replace the program atomically (bpf_link_update) so that a restart or
// an upgrade never leaves the NIC without a program, nor the maps without
// their contents.
import { existsSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { XdplbError } from '../errors.ts';
import { ensureBpffsFor } from './bpffs.ts';
import { MAP_NAMES, type DataPlane } from './dataplane.ts';
import { native, type NativeLink } from './native.ts';

export const PIN_ROOT = '/sys/fs/bpf/xdplb';

export function defaultPinDir(iface: string): string {
  return `${PIN_ROOT}/${iface}`;
}

export function linkPath(pinDir: string): string {
  return `${pinDir}/link`;
}

export type AttachOutcome = 'attached' | 'replaced' | 'reattached-defunct';

/**
 * Attaches dp's program to ifindex, or — when a link is pinned already —
 * swaps the program in that link atomically. A pinned link whose interface
 * is gone (ifindex 0) is dropped and a new one made.
 */
export async function attachOrReplace(dp: DataPlane, pinDir: string, ifindex: number, mode: 'native' | 'generic'): Promise<{ link: NativeLink; outcome: AttachOutcome }> {
  const path = linkPath(pinDir);
  let outcome: AttachOutcome = 'attached';
  if (existsSync(path)) {
    const link = native.openPinnedLink(path);
    const info = link.info();
    if (info.ifindex === ifindex) {
      link.update(dp.program);
      return { link, outcome: 'replaced' };
    }
    if (info.ifindex !== 0) {
      link.close();
      throw new XdplbError('INTERFACE', `${pinDir} holds the attachment of another interface (ifindex ${info.ifindex}, not ${ifindex}); use another --pin-dir or detach it first`);
    }
    link.close();
    unlinkSync(path);
    outcome = 'reattached-defunct';
  }
  let link: NativeLink;
  try {
    link = await dp.program.attachXdp(ifindex, mode);
  } catch (err) {
    const e = err as { code?: string; message: string };
    const hint =
      e.code === 'EBUSY' || e.code === 'EEXIST'
        ? ': another XDP program is attached to this interface (remove it first)'
        : e.code === 'EOPNOTSUPP' && mode === 'native'
          ? ': the driver has no native XDP; use --mode generic'
          : '';
    throw new XdplbError('INTERFACE', `cannot attach XDP in ${mode} mode: ${e.message}${hint}`, [], { cause: err });
  }
  link.pin(path);
  return { link, outcome };
}

/** The ifindex of the attachment pinned in pinDir (0: defunct), or null when none is pinned. */
export function pinnedLinkIfindex(pinDir: string): number | null {
  const path = linkPath(pinDir);
  if (!existsSync(path)) return null;
  const link = native.openPinnedLink(path);
  try {
    return link.info().ifindex;
  } finally {
    link.close();
  }
}

const PIN_NAMES: ReadonlySet<string> = new Set([...MAP_NAMES, 'link']);

/**
 * Refuses (USAGE) a directory that is not an xdplb pin layout on a bpffs: it
 * must hold xdplb's ABI pin and nothing but xdplb's pins. A missing or empty
 * directory passes (nothing to remove, or room for new pins); `refused` ends
 * the message: what was not done.
 */
export function checkPinLayout(pinDir: string, refused = 'nothing was removed'): void {
  if (!existsSync(pinDir)) return;
  ensureBpffsFor(pinDir);
  const entries = readdirSync(pinDir);
  if (entries.length === 0) return;
  const foreign = entries.filter((e) => !PIN_NAMES.has(e));
  if (foreign.length > 0 || !entries.includes('xdplb_abi'))
    throw new XdplbError(
      'USAGE',
      `${pinDir} is not an xdplb pin directory (${foreign.length ? `it holds ${foreign.slice(0, 5).join(', ')}${foreign.length > 5 ? ', ...' : ''}` : 'no xdplb_abi pin'}): ${refused}`,
    );
}

/** Removes the attachment and the pins of an xdplb pin layout (checked first); true if anything was there. */
export function detachPins(pinDir: string): boolean {
  checkPinLayout(pinDir);
  if (!existsSync(pinDir) || readdirSync(pinDir).length === 0) return false;
  const path = linkPath(pinDir);
  if (existsSync(path)) {
    const link = native.openPinnedLink(path);
    try {
      if (link.info().ifindex !== 0) link.detach();
    } finally {
      link.close();
    }
  }
  for (const f of readdirSync(pinDir)) unlinkSync(`${pinDir}/${f}`);
  rmdirSync(pinDir);
  return true;
}
