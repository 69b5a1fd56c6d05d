// `xdplb status --ipvsadm`: golden texts in exactly ipvsadm 1.31's format.
// The expected lines were printed by the shell's printf with ipvsadm's own
// format strings ("%-33s", "  -> %-28s %-7s %-6d %-10u %-10u", print_largenum's
// "%9llu" / "%8lluK" ...), trailing blanks included.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { largenum, renderIpvsadm } from '../../src/status/ipvsadm.ts';
import type { BackendStatus, ServiceStatus, Status } from '../../src/status/status.ts';

function backend(address: string, o: Partial<BackendStatus> = {}): BackendStatus {
  return { address, mac: '02:00:00:00:01:01', weight: 1, state: 'active', health: 'up', share: 0, packets: 0, bytes: 0, newFlows: 0, activeFlows: 0, inactiveFlows: 0, ...o };
}

function service(protocol: string, vip: string, port: number, backends: BackendStatus[], o: Partial<ServiceStatus> = {}): ServiceStatus {
  return { name: `${vip}:${port}`, protocol, vip, port, scheduler: 'maglev', noBackend: 'drop', packets: 0, bytes: 0, newFlows: 0, backends, ...o };
}

/** In the data plane's order (by VIP text, as status sorts them): ipvsadm's own order is different. */
function status(): Status {
  return {
    pinDir: '/sys/fs/bpf/xdplb/eth1',
    global: {},
    flowTable: { entries: 9, capacity: 262144 },
    ingressMac: null,
    services: [
      service('TCP', '10.240.0.201', 80, [
        backend('10.240.0.103', { state: 'down', weight: 1 }),
        backend('10.240.0.102', { state: 'draining', weight: 2, activeFlows: 5, newFlows: 321, packets: 23456789, bytes: 1234 }),
        backend('10.240.0.101', { weight: 1, activeFlows: 3, inactiveFlows: 1, newFlows: 4000, packets: 100000000, bytes: 99999999999 }),
      ], { newFlows: 4321, packets: 123456789, bytes: 98765432101 }),
      service('UDP', '10.240.0.201', 53, [backend('10.240.0.101', { weight: 3, inactiveFlows: 2, newFlows: 5, packets: 999999999, bytes: 1000000000 })], { scheduler: 'maglev-source', newFlows: 5, packets: 999999999, bytes: 1000000000 }),
      service('TCP', '10.240.0.202', 0, [backend('10.240.0.101', { weight: 10 })]),
      service('TCP', '200.0.0.1', 8080, [backend('200.0.0.11', { newFlows: 7, packets: 70, bytes: 7000 })], { newFlows: 7, packets: 70, bytes: 7000 }),
      service('TCP', '2001:db8::201', 443, [backend('2001:db8::101', { weight: 100, activeFlows: 1234, newFlows: 1, packets: 2, bytes: 123456789012345 })], { newFlows: 1, packets: 2, bytes: 12345678901234 }),
    ],
  };
}

describe('status --ipvsadm prints ipvsadm -L -n exactly', () => {
  test('ipvsadm -L -n: Forward Route, the weight (0 while draining), flows as ActiveConn/InActConn, down backends left out, ipvsadm\'s sort order', () => {
    // ipvsadm compares addresses as the C int difference of two unsigned words:
    // 200.0.0.1 - 10.240.0.201 wraps negative, so 200.0.0.1 sorts first
    assert.equal(
      renderIpvsadm(status(), 'list'),
      [
        'IP Virtual Server version 1.2.1 (size=262144)',
        'Prot LocalAddress:Port Scheduler Flags',
        '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
        'TCP  200.0.0.1:8080 mh (mh-port)',
        '  -> 200.0.0.11:8080              Route   1      0          0         ',
        'TCP  10.240.0.201:80 mh (mh-port)',
        '  -> 10.240.0.101:80              Route   1      3          1         ',
        '  -> 10.240.0.102:80              Route   0      5          0         ',
        'TCP  10.240.0.202:0 mh (mh-port)',
        '  -> 10.240.0.101:0               Route   10     0          0         ',
        'UDP  10.240.0.201:53 mh',
        '  -> 10.240.0.101:53              Route   3      0          2         ',
        'TCP  [2001:db8::201]:443 mh (mh-port)',
        '  -> [2001:db8::101]:443          Route   100    1234       0         ',
      ].join('\n'),
    );
  });

  test('ipvsadm -L -n --stats: Conns InPkts OutPkts InBytes OutBytes, K/M/G/T as print_largenum, Out* 0 (DR replies bypass the director)', () => {
    assert.equal(
      renderIpvsadm(status(), 'stats'),
      [
        'IP Virtual Server version 1.2.1 (size=262144)',
        'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes',
        '  -> RemoteAddress:Port',
        'TCP  200.0.0.1:8080                      7       70        0     7000        0',
        '  -> 200.0.0.11:8080                     7       70        0     7000        0',
        'TCP  10.240.0.201:80                  4321  123456K        0   98765M        0',
        '  -> 10.240.0.101:80                  4000  100000K        0   99999M        0',
        '  -> 10.240.0.102:80                   321 23456789        0     1234        0',
        'TCP  10.240.0.202:0                      0        0        0        0        0',
        '  -> 10.240.0.101:0                      0        0        0        0        0',
        'UDP  10.240.0.201:53                     5  999999K        0    1000M        0',
        '  -> 10.240.0.101:53                     5  999999K        0    1000M        0',
        'TCP  [2001:db8::201]:443                 1        2        0   12345G        0',
        '  -> [2001:db8::101]:443                 1        2        0     123T        0',
      ].join('\n'),
    );
  });

  test('ipvsadm -L -n --rate: CPS InPPS OutPPS InBPS OutBPS, rounded; a backend\'s CPS/PPS columns are plain %8u, its BPS print_largenum', () => {
    const st = status();
    const set = (s: ServiceStatus | BackendStatus, newFlows: number, packets: number, bytes: number) => Object.assign(s, { newFlows, packets, bytes });
    const [a, u, p, w, v6] = st.services as [ServiceStatus, ServiceStatus, ServiceStatus, ServiceStatus, ServiceStatus];
    set(w, 0.6, 9.5, 1500.4);
    set(w.backends[0]!, 0.6, 9.5, 1500.4);
    set(a, 120, 250000, 300000000);
    set(a.backends[2]!, 100, 200000, 240000000);
    set(a.backends[1]!, 20, 50000, 60000000);
    set(p, 0, 0, 0);
    set(p.backends[0]!, 0, 0, 0);
    set(u, 3, 7, 700);
    set(u.backends[0]!, 3, 7, 700);
    set(v6, 0.2, 1, 60);
    set(v6.backends[0]!, 0.2, 1, 60);
    assert.equal(
      renderIpvsadm(st, 'rate'),
      [
        'IP Virtual Server version 1.2.1 (size=262144)',
        'Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS',
        '  -> RemoteAddress:Port',
        'TCP  200.0.0.1:8080                      1       10        0     1500        0',
        '  -> 200.0.0.11:8080                     1       10        0     1500        0',
        'TCP  10.240.0.201:80                   120   250000        0  300000K        0',
        '  -> 10.240.0.101:80                   100   200000        0  240000K        0',
        '  -> 10.240.0.102:80                    20    50000        0 60000000        0',
        'TCP  10.240.0.202:0                      0        0        0        0        0',
        '  -> 10.240.0.101:0                      0        0        0        0        0',
        'UDP  10.240.0.201:53                     3        7        0      700        0',
        '  -> 10.240.0.101:53                     3        7        0      700        0',
        'TCP  [2001:db8::201]:443                 0        1        0       60        0',
        '  -> [2001:db8::101]:443                 0        1        0       60        0',
      ].join('\n'),
    );
  });

  test('print_largenum: exact below 100 million, then K, M, G, T by integer division', () => {
    const cases: [number, string][] = [
      [0, '        0'],
      [99_999_999, ' 99999999'],
      [100_000_000, '  100000K'],
      [999_999_999, '  999999K'],
      [1_000_000_000, '    1000M'],
      [99_999_999_999, '   99999M'],
      [100_000_000_000, '     100G'],
      [99_999_999_999_999, '   99999G'],
      [100_000_000_000_000, '     100T'],
    ];
    for (const [n, text] of cases) assert.equal(largenum(n), text, `print_largenum(${n})`);
  });

  test('no service: the three title lines only; an IPv4-compatible IPv6 address as inet_ntop writes it', () => {
    assert.equal(renderIpvsadm({ ...status(), services: [] }, 'list'), 'IP Virtual Server version 1.2.1 (size=262144)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn');
    const text = renderIpvsadm({ ...status(), services: [service('UDP', '::a00:1', 53, [])] }, 'list');
    assert.match(text, /^UDP {2}\[::10\.0\.0\.1\]:53 mh \(mh-port\)$/m);
  });
});
