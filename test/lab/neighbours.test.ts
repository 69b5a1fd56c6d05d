// Backend MACs follow the kernel's neighbour notices (RTNLGRP_NEIGH), not a
// poll: when the director's kernel learns a backend's new MAC (from its
// unsolicited ARP, as after a NIC replaced or a VM moved), the data plane
// sends to the new MAC at once; the full poll runs only every POLL_MS as a
// safety net.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { POLL_MS } from '../../src/net/neighbours.ts';
import { decodeDest, u32Key } from '../../src/dataplane/abi.ts';
import { DataPlane } from '../../src/dataplane/dataplane.ts';
import { observe } from '../../src/reconcile/observe.ts';
import { formatMac } from '../../src/model/address.ts';
import { clientRequests, inNs, LAB, labDown, labUp, readLabStatus } from '../../src/lab/lab.ts';

before(async () => {
  await labUp({ backends: 2, mode: 'native' });
});
after(async () => {
  await labDown();
});

const macOf = (address: string) => readLabStatus().services.find((s) => s.name === 'web')!.backends.find((b) => b.address === address)?.mac;

/** A cheap reader of one destination's MAC in the pinned dests map (readLabStatus reads the whole flow table). */
function destMacReader(address: string): () => string {
  const dp = DataPlane.openPinned(LAB.pinDir);
  const id = [...observe(dp).dests.values()].find((d) => d.address.text === address)!.id;
  return () => formatMac(decodeDest(dp.maps.dests.lookup(u32Key(id))!).mac);
}

test("a backend's new MAC reaches the data plane by the kernel's notice, well before a poll could bring it; traffic follows", async (t) => {
  const backend = LAB.backend(1);
  const before = macOf(backend);
  const fresh = '02:00:00:00:01:99';
  assert.notEqual(before, fresh);
  assert.ok(clientRequests(4).every((r) => r.ok));
  const destMac = destMacReader(backend);
  execFileSync('ip', ['-n', LAB.backendNs(1), 'link', 'set', LAB.nic, 'address', fresh]);
  // the director's kernel learns it (as from the backend's unsolicited ARP): the entry changes when this returns
  execFileSync('ip', ['-n', LAB.directorNs, 'neigh', 'replace', backend, 'lladdr', fresh, 'dev', LAB.nic, 'nud', 'stale']);
  const sent = performance.now();
  let took = Infinity;
  while (performance.now() - sent < POLL_MS * 2) {
    if (destMac() === fresh) {
      took = performance.now() - sent;
      break;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  assert.ok(took < Infinity, `the data plane has the new MAC ${fresh} (it still has ${macOf(backend)})`);
  const log = readFileSync(`${LAB.runDir}/director.log`, 'utf8');
  assert.match(log, new RegExp(`"backends":\\["${backend.replaceAll('.', '\\.')}"\\],"how":"notice","msg":"backend MACs resolved, changed or lost"`), 'brought by the notice, not by the poll');
  t.diagnostic(`the director's kernel entry changed → the new MAC in the data plane, seen by reading the pins in a loop: ${took.toFixed(1)} ms (the poll runs every ${POLL_MS} ms)`);
  const replies = clientRequests(20);
  assert.ok(replies.every((r) => r.ok), 'every request answered');
  assert.ok(replies.some((r) => r.backend === LAB.backendName(1)), 'backend 1 answers at its new MAC');
});
