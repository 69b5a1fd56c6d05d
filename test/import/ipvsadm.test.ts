// `xdplb import ipvsadm` on rules in the exact format of `ipvsadm -S -n`
// (ipvsadm 1.31, ipvsadm.c print_service_entry with FMT_RULE: services in its
// sort order, each -A line followed by its -a lines). IPVS is not in this
// kernel, so the fixtures in fixtures/ipvsadm/ are written to that format,
// one for every flag it can print (-t -u --sctp-service -f -6, -s, -p, -M,
// --pe, -o, -b, -g -i -m, -w, --tun-*). Every output goes through the config
// schema.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parseConfigText, validateConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { XdplbError } from '../../src/errors.ts';
import { importIpvsadm } from '../../src/import/ipvsadm.ts';

const FIXTURES = new URL('./fixtures/ipvsadm/', import.meta.url);
const fixture = (name: string) => readFileSync(new URL(name, FIXTURES), 'utf8');

/** The import of a rules text, and the config its YAML validates to. */
function imported(text: string, natAsDr = false): { yaml: string; config: Config; warnings: string[] } {
  const r = importIpvsadm(text, { source: 'rules', natAsDr });
  return { yaml: r.text, config: validateConfig(parseConfigText(r.text, 'imported'), {}, 'imported'), warnings: r.warnings.map((w) => `${w.origin}: ${w.text}`) };
}

/** The error an import is refused with. */
function refused(text: string, natAsDr = false): XdplbError {
  try {
    importIpvsadm(text, { source: 'rules', natAsDr });
  } catch (err) {
    assert.ok(err instanceof XdplbError, String(err));
    return err;
  }
  assert.fail('expected the import to be refused');
}

const service = (c: Config, name: string) => {
  const s = c.services.find((x) => x.name === name);
  assert.ok(s, `no service ${name} in ${c.services.map((x) => x.name).join(', ')}`);
  return s;
};
const backends = (c: Config, name: string) => service(c, name).backends.map((b) => [b.address, b.weight]);

describe('the save format of a Direct Routing director (every service flag)', () => {
  const { yaml, config, warnings } = imported(fixture('dr.rules'));

  test('every -A line is a service, named and keyed as ipvsadm keys it, every -a line a backend with its weight', () => {
    assert.deepEqual(
      config.services.map((s) => [s.name, s.vip, s.port, s.protocol, s.scheduler]),
      [
        ['tcp-10.240.0.201-80', '10.240.0.201', 80, 'tcp', 'maglev'],
        ['tcp-10.240.0.201-443', '10.240.0.201', 443, 'tcp', 'maglev-source'],
        ['tcp-10.240.0.202-0', '10.240.0.202', 0, 'tcp', 'maglev-source'],
        ['udp-10.240.0.201-53', '10.240.0.201', 53, 'udp', 'maglev'],
        ['udp-10.240.0.203-5060', '10.240.0.203', 5060, 'udp', 'maglev-source'],
        ['tcp-2001:db8::201-80', '2001:db8::201', 80, 'tcp', 'maglev'],
        ['tcp-2001:db8::202-443', '2001:db8::202', 443, 'tcp', 'maglev-source'],
      ],
    );
    assert.deepEqual(backends(config, 'tcp-10.240.0.201-80'), [['10.240.0.101', 3], ['10.240.0.102', 1], ['10.240.0.103', 0]], 'wrr keeps the weights, -w 0 drains');
    assert.deepEqual(backends(config, 'tcp-10.240.0.201-443'), [['10.240.0.101', 1], ['10.240.0.102', 1]], 'rr gave equal shares: weights 1');
    assert.deepEqual(backends(config, 'tcp-10.240.0.202-0'), [['10.240.0.101', 1], ['10.240.0.102', 2]]);
    assert.deepEqual(backends(config, 'tcp-2001:db8::202-443'), [['2001:db8::101', 10]]);
    for (const s of config.services) assert.equal(s.healthCheck.type, 'none', 'ipvsadm carries no health checks');
  });

  test('what behaves differently is said in the YAML, and the worst of it on stderr with its line', () => {
    assert.match(yaml, /# line 1: -A -t 10\.240\.0\.201:80 -s wrr\n/);
    assert.match(yaml, /# -w 5 \(rr ignored it\): weight 1\./);
    assert.match(yaml, /weight 0 \(quiescent in IPVS\)/);
    assert.match(yaml, /Persistence \(300 s\): IPVS kept each client/);
    assert.match(yaml, /Port 0: every port of the VIP/);
    assert.match(yaml, /ipvsadm has no health checks/);
    assert.match(yaml, /sh with sh-port hashed the client address and port: maglev hashes the whole 5-tuple/);
    assert.match(yaml, /sh-fallback: xdplb always does this/);
    assert.match(yaml, /mh with mh-port hashed the client address and port: maglev hashes the whole 5-tuple/);
    assert.deepEqual(
      warnings.map((w) => w.slice(0, w.indexOf(':', w.indexOf(':') + 1))),
      ['line 8: Persistence granularity 255.255.255.0', 'line 11: -o (one-packet scheduling)', 'line 14: Persistence engine sip (IPVS\'s SIP Call-ID affinity)', 'line 19: Persistence granularity 64'],
    );
    assert.match(yaml, /# WARNING: Persistence engine sip/);
  });

  test('the output is what it was (fixtures/ipvsadm/dr.yaml; UPDATE_SNAPSHOTS=1 rewrites it)', () => {
    const snapshot = new URL('dr.yaml', FIXTURES);
    if (process.env.UPDATE_SNAPSHOTS === '1') writeFileSync(snapshot, yaml);
    assert.equal(yaml, readFileSync(snapshot, 'utf8'));
  });
});

describe('schedulers: each IPVS scheduler maps to maglev or maglev-source', () => {
  const { yaml, config, warnings } = imported(fixture('schedulers.rules'));
  const by = (port: number) => config.services.find((s) => s.port === port)!;
  const expected: [number, string, string, number][] = [
    [1, 'rr', 'maglev', 1],
    [2, 'wrr', 'maglev', 4],
    [3, 'lc', 'maglev', 4],
    [4, 'wlc', 'maglev', 4],
    [5, 'lblc', 'maglev', 4],
    [6, 'lblcr', 'maglev', 4],
    [7, 'dh', 'maglev', 1],
    [8, 'sh', 'maglev-source', 4],
    [9, 'sed', 'maglev', 4],
    [10, 'nq', 'maglev', 4],
    [11, 'fo', 'maglev', 4],
    [12, 'ovf', 'maglev', 4],
    [13, 'mh', 'maglev-source', 4],
    [14, 'twos', 'maglev', 4],
    [15, 'sh -b sh-port', 'maglev', 4],
    [16, 'mh -p 300 -b mh-port', 'maglev-source', 4],
    [17, 'wrr -b flag-1,flag-3', 'maglev', 4],
  ];
  for (const [port, sched, scheduler, weight] of expected) {
    test(`-s ${sched} → ${scheduler}, a -w 4 backend weighs ${weight}`, () => {
      assert.equal(by(port).scheduler, scheduler);
      assert.equal(by(port).backends[0]!.weight, weight);
    });
  }

  test('rr keeps a weight 0 at 0 (rr skipped it); the load-aware ones say that maglev does not look at load', () => {
    assert.deepEqual(by(1).backends.map((b) => b.weight), [1, 0]);
    for (const s of ['lc', 'wlc', 'lblc', 'lblcr', 'sed', 'nq', 'twos']) assert.match(yaml, new RegExp(`# ${s} \\(.*?\\) chose by the backends' connection counts`));
    assert.match(yaml, /-b flag-1,flag-3: flags of a scheduler xdplb does not have; not imported/);
  });

  test('dh, fo and ovf behave very differently: warned on stderr', () => {
    assert.deepEqual(
      warnings.map((w) => w.slice(0, w.indexOf(' (') > 0 ? w.indexOf(' (') : undefined)),
      ['line 14: dh', 'line 22: fo', 'line 24: ovf'],
    );
  });
});

describe('refused, with the line numbers: xdplb forwards by Direct Routing only', () => {
  test('tunnelled servers (-i: ipip, gue, gre, with every --tun-* option)', () => {
    const err = refused(fixture('tunnel.rules'));
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.deepEqual(
      err.details.filter((d) => d.startsWith('line')).map((d) => d.slice(0, d.indexOf(':'))),
      ['line 2', 'line 4', 'line 5', 'line 6', 'line 7'],
      'every -i line and no other (line 8 is -g)',
    );
    assert.match(err.details.at(-1)!, /^Refused: tunnelled servers \(-i: IP-in-IP, GUE or GRE\): xdplb is Direct Routing only/);
    assert.match(err.message, /line 4: tunnelled \(-i\): -a -t 207\.175\.44\.110:80 -r 192\.168\.10\.1:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum/);
  });

  test('masquerading servers (-m), unless --nat-as-dr; even then not to another port', () => {
    const err = refused(fixture('nat.rules'));
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.deepEqual(err.details.slice(0, -1).map((d) => d.slice(0, d.indexOf(':'))), ['line 2', 'line 3', 'line 4', 'line 6']);
    assert.match(err.details.at(-1)!, /masquerading servers \(-m, NAT\).*--nat-as-dr/);
    const again = refused(fixture('nat.rules'), true);
    assert.deepEqual(again.details, ['line 4: -m to port 8080 of a service on port 80: Direct Routing cannot change the port (--nat-as-dr needs the same port): -a -t 207.175.44.110:80 -r 192.168.10.3:8080 -m -w 1']);
    const { config, warnings } = imported(fixture('nat.rules').replace(':8080', ':80').replace('192.168.10.3:80 -m', '192.168.10.3:80 -m'), true);
    assert.deepEqual(backends(config, 'tcp-207.175.44.110-80'), [['192.168.10.1', 1], ['192.168.10.2', 1], ['192.168.10.3', 1]]);
    assert.deepEqual(backends(config, 'tcp-2001:db8::80-80'), [['2001:db8::a0a0', 1]]);
    assert.match(warnings[0]!, /^line 1: 192\.168\.10\.1, 192\.168\.10\.2, 192\.168\.10\.3: NAT servers imported as Direct Routing backends .*xdplb realserver --vip 207\.175\.44\.110/);
  });

  test('firewall-mark services (-f, -f -6), explained', () => {
    const err = refused(fixture('fwmark.rules'));
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.deepEqual(err.details.slice(0, 2), ['line 1: firewall mark 1: -A -f 1 -s rr', 'line 4: firewall mark 2: -A -f 2 -6 -s wlc -p 300']);
    assert.match(err.details[2]!, /a mark that iptables or nft put on them, which an XDP program never sees \(it runs before the firewall\)/);
  });

  test('SCTP services (--sctp-service)', () => {
    const err = refused(fixture('sctp.rules'));
    assert.deepEqual(err.details, ['line 1: SCTP: -A --sctp-service 10.0.0.1:9899 -s rr', 'Refused: SCTP services: xdplb balances TCP and UDP only.']);
  });

  test('every refusal of one input in one error: a good service does not hide a bad one', () => {
    const err = refused(`${fixture('dr.rules')}${fixture('tunnel.rules')}${fixture('fwmark.rules')}`);
    assert.deepEqual(err.details.filter((d) => d.startsWith('line')).map((d) => d.slice(0, d.indexOf(':'))), ['line 22', 'line 24', 'line 25', 'line 26', 'line 27', 'line 29', 'line 32']);
  });
});

describe('input that is not `ipvsadm -S -n` output: unreadable, with the line', () => {
  test('names instead of numbers (ipvsadm -S without -n)', () => {
    const err = refused(fixture('names.rules'));
    assert.equal(err.code, 'CONFIG_UNREADABLE');
    assert.equal(err.details.length, 2);
    assert.match(err.details[0]!, /^line 1: -t www\.example\.com:http: a host name, not an address: save the rules with numbers, `ipvsadm -S -n`/);
    assert.match(refused('-A -t 10.0.0.1:http -s rr\n').details[0]!, /the port "http" is a service name: save the rules with numbers/);
  });

  test('unknown options, protocols ipvsadm prints as --xxx-service, stray words, a -a before its -A', () => {
    const lines = ['-A -t 10.0.0.1:80 -s rr --bogus', '-A --xxx-service 10.0.0.1:80 -s rr', '-A -t 10.0.0.1:81 -s rr extra', '-a -t 10.0.0.9:80 -r 10.0.0.2:80 -g -w 1', '-L -n', '-A -t 10.0.0.1:0 -s rr', '-A -t 10.0.0.5:80 -s rr -w 3', '-A -t 10.0.0.6:80 -s rr', '-a -t 10.0.0.6:80 -r 10.0.0.2 -w 2147483648'];
    const err = refused(lines.join('\n'));
    assert.equal(err.code, 'CONFIG_UNREADABLE');
    assert.deepEqual(err.details, [
      'line 1: unknown option --bogus: -A -t 10.0.0.1:80 -s rr --bogus',
      'line 2: unknown option --xxx-service: -A --xxx-service 10.0.0.1:80 -s rr',
      'line 3: unexpected "extra": -A -t 10.0.0.1:81 -s rr extra',
      'line 4: no virtual service -t 10.0.0.9:80: its -A line must come first: -a -t 10.0.0.9:80 -r 10.0.0.2:80 -g -w 1',
      'line 5: -L is not a rule (ipvsadm -R would not restore it): -L -n',
      'line 6: port 0 (every port) on a service that is not persistent: ipvsadm refuses it ("Zero port specified for non-persistent service"): -A -t 10.0.0.1:0 -s rr',
      'line 7: --weight does not belong on a service (-A/-E) line: -A -t 10.0.0.5:80 -s rr -w 3',
      'line 9: -w "2147483648": expected a whole number from 0 to 2147483647: -a -t 10.0.0.6:80 -r 10.0.0.2 -w 2147483648',
    ]);
  });

  test('-b with another scheduler\'s flag, -M without -p, -6 without -f', () => {
    const err = refused('-A -t 10.0.0.1:80 -s wrr -b sh-port\n-A -t 10.0.0.2:80 -s rr -M 255.255.255.0\n-A -t 10.0.0.3:80 -6 -s rr\n');
    assert.deepEqual(
      err.details.map((d) => d.slice(0, d.lastIndexOf(': -A'))),
      ['line 1: -b sh-port is a flag of the sh scheduler, not of wrr', 'line 2: -M (the persistence netmask) without -p', 'line 3: -6 is for firewall-mark services (-f) only'],
    );
  });

  test('nothing in it: refused, not an empty config', () => {
    const err = refused('\n# no rules\n');
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.match(err.message, /nothing to import/);
  });
});

describe('what else `ipvsadm -R` reads (hand-kept rules files)', () => {
  test('a leading "ipvsadm", long options, -x/-y, -E/-e, -D/-d, -C, --set, --start-daemon and comments, applied in order', () => {
    const text = [
      '# /etc/ipvsadm.rules, kept by hand',
      'ipvsadm -A -t 192.0.2.1:80 -s rr',
      '-C',
      'ipvsadm --add-service --tcp-service 192.0.2.10:80 --scheduler wlc',
      '-a -t 192.0.2.10:80 -r 192.0.2.101 -g -w 2 -x 1000 -y 800',
      '--add-server --tcp-service=192.0.2.10:80 --real-server=192.0.2.102:80 --gatewaying --weight=3',
      '-a -t 192.0.2.10:80 -r 192.0.2.103:80 -w 1',
      '-e -t 192.0.2.10:80 -r 192.0.2.103:80 -g -w 7',
      '-d -t 192.0.2.10:80 -r 192.0.2.102',
      '-E -t 192.0.2.10:80 -s sh -p',
      '-A -u 192.0.2.10:53 -s rr -o',
      '-D -u 192.0.2.10:53',
      '--set 900 120 300',
      '--start-daemon master --mcast-interface eth1 --syncid 7',
      '-Z',
      '',
    ].join('\n');
    const { yaml, config, warnings } = imported(text);
    assert.deepEqual(
      config.services.map((s) => [s.name, s.scheduler]),
      [['tcp-192.0.2.10-80', 'maglev-source']],
      '-C cleared the first service, -D removed the UDP one, -E made it sh -p (300 s)',
    );
    assert.deepEqual(backends(config, 'tcp-192.0.2.10-80'), [['192.0.2.101', 2], ['192.0.2.103', 7]], '-d removed .102, -e changed .103');
    assert.match(yaml, /Persistence \(300 s\)/);
    assert.match(yaml, /--set 900 120 300 \(IPVS connection timeouts\) not imported/);
    assert.match(yaml, /--start-daemon \(IPVS's connection synchronisation daemon\) not imported/);
    assert.deepEqual(warnings, ['line 4: 192.0.2.101: -x 1000 -y 800 (connection thresholds) not imported: xdplb counts no connections per backend.']);
  });

  test('an edit or delete of what is not there is refused, as ipvsadm -R would', () => {
    const err = refused('-A -t 192.0.2.10:80 -s rr\n-e -t 192.0.2.10:80 -r 192.0.2.9:80 -w 1\n-D -t 192.0.2.11:80\n-A -t 192.0.2.10:80 -s rr\n');
    assert.deepEqual(
      err.details.map((d) => d.slice(0, d.lastIndexOf(': -'))),
      ['line 2: no real server 192.0.2.9:80 in -t 192.0.2.10:80 to edit', 'line 3: no service -t 192.0.2.11:80 to delete', 'line 4: virtual service -t 192.0.2.10:80 already added (line 1)'],
    );
  });

  test('a gatewayed server on another port gets the service\'s port, as ipvsadm gives it', () => {
    const { config } = imported('-A -t 192.0.2.10:80 -s wrr\n-a -t 192.0.2.10:80 -r 192.0.2.101:8080 -g -w 1\n');
    assert.deepEqual(backends(config, 'tcp-192.0.2.10-80'), [['192.0.2.101', 1]]);
  });

  test('more services than the default capacity: capacity raised, still valid', () => {
    const lines: string[] = [];
    for (let i = 0; i < 5000; i++) lines.push(`-A -t 10.${(i >> 8) & 255}.${i & 255}.1:80 -s wrr`, `-a -t 10.${(i >> 8) & 255}.${i & 255}.1:80 -r 192.0.2.1:80 -g -w 1`);
    const { config } = imported(lines.join('\n'));
    assert.equal(config.services.length, 5000);
    assert.equal(config.capacity.services, 8192);
  });
});
