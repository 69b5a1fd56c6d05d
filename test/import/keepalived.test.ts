// `xdplb import keepalived` on every sample configuration of Debian's
// keepalived package (/usr/share/doc/keepalived/samples, keepalived 2.2.7:
// scripts/bootstrap installs it), and on fixtures/keepalived/dr.conf, a
// Direct Routing director that uses what keepalived's parser reads (both
// comment styles, quotes, includes, conditional lines, parameters). Each input
// either converts to a config that validates, or is refused with a named
// reason.
import assert from 'node:assert/strict';
import { existsSync, globSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseConfigText, validateConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { XdplbError } from '../../src/errors.ts';
import { importKeepalived, type KeepalivedImportOptions } from '../../src/import/keepalived.ts';
import type { IncludedFile } from '../../src/import/keepalived-syntax.ts';

const SAMPLES = '/usr/share/doc/keepalived/samples';
const FIXTURES = fileURLToPath(new URL('./fixtures/keepalived/', import.meta.url));

interface Imported {
  yaml: string;
  config: Config;
  warnings: string[];
}

function convert(text: string, options: Partial<KeepalivedImportOptions> = {}): Imported {
  const r = importKeepalived(text, { file: 'keepalived.conf', ...options });
  return { yaml: r.text, config: validateConfig(parseConfigText(r.text, 'imported'), {}, 'imported'), warnings: r.warnings.map((w) => `${w.origin}: ${w.text}`) };
}

function refusal(text: string, options: Partial<KeepalivedImportOptions> = {}): XdplbError {
  try {
    importKeepalived(text, { file: 'keepalived.conf', ...options });
  } catch (err) {
    assert.ok(err instanceof XdplbError, String(err));
    return err;
  }
  assert.fail('expected the import to be refused');
}

/** Files under the fixtures, named relative to it (so that the snapshot names no machine's paths). */
function fixtureResolver(pattern: string, dir: string): IncludedFile[] {
  return globSync(pattern, { cwd: join(FIXTURES, dir) })
    .map((p) => join(dir, p))
    .filter((p) => statSync(join(FIXTURES, p)).isFile())
    .sort()
    .map((path) => ({ path, text: readFileSync(join(FIXTURES, path), 'utf8') }));
}

const service = (c: Config, name: string) => {
  const s = c.services.find((x) => x.name === name);
  assert.ok(s, `no service ${name} in ${c.services.map((x) => x.name).join(', ')}`);
  return s;
};

/** What each sample gives: without and with --nat-as-dr, a config ('ok') or a refusal matching the pattern. */
type Outcome = 'ok' | RegExp;
const NAT = /NAT \(lb_kind NAT\): xdplb is Direct Routing only/;
const VRRP_ONLY = /no virtual_server block: nothing that IPVS balanced \(this configuration runs VRRP only: for redundant xdplb directors see README "Redundancy"/;
const SAMPLE_OUTCOMES: Readonly<Record<string, readonly [Outcome, Outcome]>> = {
  'keepalived.conf.HTTP_GET.port': [NAT, 'ok'],
  'keepalived.conf.IPv6': [NAT, /real_server ae00::10 25 \(keepalived\.conf\.IPv6:21\): NAT to port 25 of a VIP on port 80: Direct Routing cannot change the port/],
  'keepalived.conf.PING_CHECK': [NAT, 'ok'],
  'keepalived.conf.SMTP_CHECK': [NAT, 'ok'],
  'keepalived.conf.SSL_GET': [NAT, 'ok'],
  'keepalived.conf.UDP_CHECK': [NAT, 'ok'],
  'keepalived.conf.conditional_conf': [/no virtual_server block/, /no virtual_server block/],
  'keepalived.conf.fwmark': [/virtual_server fwmark 1: a firewall-mark service: IPVS matched packets by a mark that iptables or nft put on them/, /a firewall-mark service/],
  'keepalived.conf.inhibit': [NAT, 'ok'],
  'keepalived.conf.misc_check': [NAT, 'ok'],
  'keepalived.conf.misc_check_arg': [NAT, 'ok'],
  'keepalived.conf.quorum': [NAT, /NAT to port 8080 of a VIP on port 80: Direct Routing cannot change the port/],
  'keepalived.conf.sample': [NAT, 'ok'],
  'keepalived.conf.status_code': [NAT, 'ok'],
  'keepalived.conf.track_interface': [VRRP_ONLY, VRRP_ONLY],
  'keepalived.conf.virtual_server_group': [NAT, 'ok'],
  'keepalived.conf.virtualhost': [NAT, 'ok'],
  'keepalived.conf.vrrp': [VRRP_ONLY, VRRP_ONLY],
  'keepalived.conf.vrrp.localcheck': [VRRP_ONLY, VRRP_ONLY],
  'keepalived.conf.vrrp.lvs_syncd': [NAT, 'ok'],
  'keepalived.conf.vrrp.routes': [VRRP_ONLY, VRRP_ONLY],
  'keepalived.conf.vrrp.rules': [VRRP_ONLY, VRRP_ONLY],
  'keepalived.conf.vrrp.scripts': [VRRP_ONLY, VRRP_ONLY],
  'keepalived.conf.vrrp.static_ipaddress': [VRRP_ONLY, VRRP_ONLY],
  'keepalived.conf.vrrp.sync': [VRRP_ONLY, VRRP_ONLY],
};

describe(`every sample of Debian's keepalived package (${SAMPLES})`, () => {
  test('the samples are there (scripts/bootstrap installs keepalived), and each has an expected outcome here', () => {
    assert.ok(existsSync(SAMPLES), `${SAMPLES} is missing: install keepalived (scripts/bootstrap does, without starting it), and not with a dpkg path-exclude of /usr/share/doc`);
    const samples = readdirSync(SAMPLES).filter((f) => f.startsWith('keepalived.conf'));
    assert.deepEqual(samples.sort(), Object.keys(SAMPLE_OUTCOMES).sort(), 'a sample without an expected outcome (a new keepalived?): add it to SAMPLE_OUTCOMES');
  });

  const read = (f: string) => {
    assert.ok(existsSync(join(SAMPLES, f)), `${join(SAMPLES, f)} is missing: install keepalived (scripts/bootstrap does, without starting it), and not with a dpkg path-exclude of /usr/share/doc`);
    return readFileSync(join(SAMPLES, f), 'utf8');
  };
  const samples: Record<string, { plain: Imported | XdplbError; natAsDr: Imported | XdplbError }> = {};
  const run = (f: string, natAsDr: boolean): Imported | XdplbError => {
    try {
      return convert(read(f), { file: f, natAsDr });
    } catch (err) {
      if (err instanceof XdplbError) return err;
      throw err;
    }
  };
  const result = (f: string, natAsDr: boolean) => {
    samples[f] ??= { plain: run(f, false), natAsDr: run(f, true) };
    return natAsDr ? samples[f].natAsDr : samples[f].plain;
  };
  const ok = (f: string): Imported => {
    const r = result(f, true);
    assert.ok(!(r instanceof XdplbError), `${f} --nat-as-dr was refused: ${r instanceof XdplbError ? r.message : ''}`);
    return r;
  };

  for (const [f, outcomes] of Object.entries(SAMPLE_OUTCOMES)) {
    for (const [i, natAsDr] of [false, true].entries()) {
      const expected = outcomes[i]!;
      test(`${f}${natAsDr ? ' --nat-as-dr' : ''}: ${expected === 'ok' ? 'converts, and validates' : `refused: ${expected.source.slice(0, 60)}`}`, () => {
        const r = result(f, natAsDr);
        if (expected === 'ok') {
          assert.ok(!(r instanceof XdplbError), `refused: ${r instanceof XdplbError ? r.message : ''}`);
          assert.ok(r.config.services.length > 0);
        } else {
          assert.ok(r instanceof XdplbError, `expected a refusal matching ${expected}, got a config:\n${r instanceof XdplbError ? '' : r.yaml}`);
          assert.equal(r.code, 'CONFIG_INVALID');
          assert.match(r.message, expected);
        }
      });
    }
  }

  test('keepalived.conf.sample: HTTP_GET with its url, connect_timeout, retry and delay_loop mapped; sorry_server and digest warned', () => {
    const { config, warnings, yaml } = ok('keepalived.conf.sample');
    const s = service(config, 'tcp-10.10.10.2-1358');
    assert.equal(s.scheduler, 'maglev-source', 'persistence_timeout 50');
    assert.deepEqual(s.backends.map((b) => [b.address, b.weight]), [['192.168.200.2', 1]]);
    assert.deepEqual(s.healthCheck, { type: 'http', path: '/testurl3/test.jsp', expectStatus: '200-299', verifyTls: false, interval: 6000, timeout: 3000, rise: 1, fall: 4 });
    assert.ok(warnings.some((w) => /^keepalived\.conf\.sample:33: sorry_server 192\.168\.200\.200 1358: xdplb has no sorry server/.test(w)), warnings.join('\n'));
    assert.ok(warnings.some((w) => /^keepalived\.conf\.sample:40: digest 640205b7b0fc66c1ea91c463fac6334d/.test(w)));
    assert.match(yaml, /WARNING: keepalived\.conf\.sample:13: vrrp_instance VI_1: VRRP is not imported/);
    assert.match(yaml, /# role: standby {2}#/);
  });

  test('keepalived.conf.HTTP_GET.port: SSL_GET with connect_port is https on that port', () => {
    const s = ok('keepalived.conf.HTTP_GET.port').config.services[0]!;
    assert.deepEqual(s.healthCheck, { type: 'https', port: 444, path: '/', expectStatus: '200-299', verifyTls: false, interval: 6000, timeout: 3000, rise: 1, fall: 4 });
  });

  test('keepalived.conf.SSL_GET: two services, https and http; the second url of each is warned about', () => {
    const { config, warnings } = ok('keepalived.conf.SSL_GET');
    assert.deepEqual(config.services.map((s) => [s.name, s.healthCheck.type]), [['tcp-192.168.200.100-443', 'https'], ['tcp-192.168.200.100-80', 'http']]);
    assert.equal(warnings.filter((w) => /1 more url block: keepalived fetched every url/.test(w)).length, 2);
  });

  test('keepalived.conf.status_code: the codes as one range, what it also accepts warned', () => {
    const { config, warnings } = ok('keepalived.conf.status_code');
    const hc = config.services[0]!.healthCheck;
    assert.equal(hc.type === 'https' && hc.expectStatus, '200-505');
    assert.ok(warnings.some((w) => w.endsWith('status_code 200-299 400-499 503 505: xdplb takes one range: 200-505, which also accepts 300-399 500-502 504')), warnings.join('\n'));
  });

  test('keepalived.conf.virtualhost: the virtual server\'s virtualhost is the Host header', () => {
    const hc = ok('keepalived.conf.virtualhost').config.services[0]!.healthCheck;
    assert.equal(hc.type === 'https' && hc.host, 'www.firewall.loc');
  });

  test('keepalived.conf.SMTP_CHECK: a TCP connect to 25 instead of the dialogue, the host blocks warned', () => {
    const { config, warnings } = ok('keepalived.conf.SMTP_CHECK');
    const s = config.services[0]!;
    assert.deepEqual(s.healthCheck, { type: 'tcp', port: 25, interval: 60000, timeout: 30000, rise: 1, fall: 3 });
    assert.equal(s.backends.length, 3);
    assert.ok(warnings.some((w) => /SMTP_CHECK's dialogue \(banner, HELO, QUIT\) is not checked/.test(w)));
    assert.ok(warnings.some((w) => /SMTP_CHECK host block \(connect_ip 192\.168\.155\.10\): other hosts were checked too/.test(w)), warnings.join('\n'));
  });

  for (const [f, checker] of [
    ['keepalived.conf.misc_check', 'MISC_CHECK runs a script'],
    ['keepalived.conf.misc_check_arg', 'MISC_CHECK runs a script'],
    ['keepalived.conf.PING_CHECK', 'PING_CHECK sends ICMP echo requests'],
    ['keepalived.conf.UDP_CHECK', 'UDP_CHECK sends a UDP datagram'],
  ] as const) {
    test(`${f}: ${checker.split(' ')[0]} cannot be run by xdplb: no health check, warned`, () => {
      const { config, warnings } = ok(f);
      assert.deepEqual(config.services[0]!.healthCheck, { type: 'none' });
      assert.ok(warnings.some((w) => w.includes(checker)), warnings.join('\n'));
      assert.ok(warnings.some((w) => w.includes('no health check xdplb can run')));
    });
  }

  test('keepalived.conf.inhibit: inhibit_on_failure explained in a comment', () => {
    assert.match(ok('keepalived.conf.inhibit').yaml, /inhibit_on_failure: keepalived set a failed server's weight to 0/);
  });

  test('keepalived.conf.virtual_server_group: the group\'s one address with the real servers\' port is served; the others and the fwmarks are named', () => {
    const { config, warnings } = ok('keepalived.conf.virtual_server_group');
    assert.deepEqual(config.services.map((s) => s.name), ['tcp-192.168.200.1-1358']);
    assert.equal(warnings.filter((w) => /virtual_server_group VSG_1: not imported: fwmark [12]: a firewall-mark service/.test(w)).length, 2);
    assert.ok(warnings.some((w) => /not imported: virtual_server group VSG_1: 192\.168\.200\.3-10 80: .*NAT to port 1358 of a VIP on port 80/.test(w)), warnings.join('\n'));
  });

  test('keepalived.conf.vrrp.lvs_syncd: the VIP a vrrp_instance held gives the interface, and is warned about', () => {
    const { config, warnings } = ok('keepalived.conf.vrrp.lvs_syncd');
    assert.equal(config.interface, 'eth0');
    assert.ok(warnings.some((w) => /VIPs held by keepalived's virtual_ipaddress: 192\.168\.200\.19 \(VI_2\)/.test(w)));
  });

  test('keepalived.conf.conditional_conf with --config-id high: the @high lines are read, and it is still VRRP only', () => {
    const err = refusal(read('keepalived.conf.conditional_conf'), { file: 'keepalived.conf.conditional_conf', configId: 'high' });
    assert.match(err.message, VRRP_ONLY);
    assert.doesNotMatch(err.message, /@high/);
    assert.match(refusal(read('keepalived.conf.conditional_conf'), { file: 'c' }).message, /lines @high left out: no --config-id given \(keepalived -i; its default is the host name\)/);
  });
});

describe('fixtures/keepalived/dr.conf: a Direct Routing director, with includes', () => {
  const text = readFileSync(join(FIXTURES, 'dr.conf'), 'utf8');
  const { yaml, config, warnings } = convert(text, { file: 'dr.conf', include: fixtureResolver, configId: 'lb1' });

  test('HTTP_GET: connect_port, the first url\'s path, status_code and virtualhost, retry and connect_timeout inherited from the virtual server', () => {
    const s = service(config, 'tcp-192.0.2.10-80');
    assert.equal(s.scheduler, 'maglev');
    assert.deepEqual(s.backends.map((b) => [b.address, b.weight]), [['192.0.2.101', 3], ['192.0.2.102', 1], ['192.0.2.103', 0]]);
    assert.deepEqual(s.healthCheck, { type: 'http', port: 8080, path: '/healthz?full=1', host: 'www.example.com', expectStatus: '200-301', verifyTls: false, interval: 2000, timeout: 1500, rise: 1, fall: 3 });
    assert.ok(warnings.includes("dr.conf:27: 192.0.2.102's check differs from 192.0.2.101's (host none, not www.example.com); xdplb checks every backend of a service alike: with 192.0.2.101's"), warnings.join('\n'));
    assert.match(yaml, /keepalived checked every 2s, took a server out after 3 failures in a row \(the retries 500ms apart\)/);
  });

  test('"{" on the next line, a multiline parameter per real server, persistence with sh-port, SSL_GET', () => {
    const s = service(config, 'tcp-192.0.2.11-443');
    assert.equal(s.scheduler, 'maglev-source');
    assert.deepEqual(s.backends.map((b) => [b.address, b.weight]), [['192.0.2.104', 2], ['192.0.2.105', 2]]);
    assert.deepEqual(s.healthCheck, { type: 'https', path: '/', expectStatus: '200-299', verifyTls: false, interval: 10000, timeout: 3000, rise: 1, fall: 2 });
  });

  test('included files (relative to the including file): UDP with a TCP_CHECK, rr weights, an IPv6 port-less service', () => {
    const dns = service(config, 'udp-192.0.2.12-53');
    assert.deepEqual(dns.backends.map((b) => b.weight), [1, 1], 'rr: equal shares');
    assert.deepEqual(dns.healthCheck, { type: 'tcp', port: 53, interval: 5000, timeout: 5000, rise: 1, fall: 2 });
    assert.ok(warnings.includes('conf.d/10-dns.conf:2: connect_timeout 10s: xdplb waits 10ms to the interval (5s): 5s'));
    assert.ok(warnings.includes('conf.d/10-dns.conf:2: keepalived required every checker of a server to pass (TCP_CHECK, MISC_CHECK); xdplb runs one: the TCP_CHECK (MISC_CHECK not imported)'));
    const v6 = service(config, 'tcp-2001:db8::10-0');
    assert.equal(v6.port, 0);
    assert.equal(v6.scheduler, 'maglev-source');
    assert.deepEqual(v6.backends.map((b) => b.address), ['2001:db8::101', '2001:db8::102']);
    assert.deepEqual(v6.healthCheck, { type: 'tcp', port: 22, interval: 3000, timeout: 3000, rise: 1, fall: 1 });
    assert.ok(warnings.includes('conf.d/10-dns.conf:27: real_server 192.0.2.103 (conf.d/10-dns.conf:45): left out: IPv4 for an IPv6 VIP (keepalived skips it too)'));
  });

  test('a virtual_server_group expands to a service per address; fwmark, SCTP, TUN and NAT servers are left out, each said', () => {
    assert.deepEqual(
      config.services.filter((s) => s.port === 25).map((s) => [s.name, s.backends.map((b) => b.address).join(' '), s.healthCheck.type]),
      [
        ['tcp-192.0.2.14-25', '192.0.2.101', 'tcp'],
        ['tcp-192.0.2.15-25', '192.0.2.101', 'tcp'],
        ['tcp-192.0.2.16-25', '192.0.2.101', 'tcp'],
      ],
    );
    for (const w of [
      /^conf\.d\/20-legacy\.conf:2: not imported: virtual_server fwmark 7: a firewall-mark service/,
      /^conf\.d\/20-legacy\.conf:12: not imported: virtual_server 192\.0\.2\.13 9899: protocol SCTP: xdplb balances TCP and UDP only/,
      /^conf\.d\/20-legacy\.conf:22: virtual_server_group MAIL: not imported: fwmark 8/,
      /^conf\.d\/20-legacy\.conf:25: real_server 192\.0\.2\.111 25 \(conf\.d\/20-legacy\.conf:37\): left out: TUN \(lvs_method TUN, tunnelling\)/,
      /^conf\.d\/20-legacy\.conf:25: real_server 192\.0\.2\.112 25 \(conf\.d\/20-legacy\.conf:43\): left out: NAT \(lvs_method NAT\)/,
      /^conf\.d\/20-legacy\.conf:29: quorum 2: xdplb has no quorum/,
    ])
      assert.equal(warnings.filter((x) => w.test(x)).length, 1, `${w}\n${warnings.join('\n')}`);
  });

  test('the VRRP part: the VIPs keepalived held are named, role and vipClaimLease suggested, an include that matches nothing warned', () => {
    assert.ok(warnings.some((w) => w.startsWith("dr.conf: VIPs held by keepalived's virtual_ipaddress: 192.0.2.10 (VI_WEB), 192.0.2.11 (VI_WEB), 2001:db8::10 (VI_WEB)")));
    assert.ok(warnings.includes('dr.conf:104: include conf.d/missing-*.conf: no file matches'));
    assert.equal(config.interface, undefined, 'the UDP VIP is on no vrrp_instance: no interface is guessed');
    assert.match(yaml, /^# interface: eth1 {2}# the director's NIC/m);
    assert.match(yaml, /^# vipClaimLease: 500ms {2}#/m);
    assert.match(yaml, /lines @\^lb1 left out: the config id is "lb1"/, 'a note, not a warning');
    assert.ok(!warnings.some((w) => w.includes('@^lb1')));
  });

  test('the output is what it was (fixtures/keepalived/dr.yaml; UPDATE_SNAPSHOTS=1 rewrites it)', () => {
    const snapshot = join(FIXTURES, 'dr.yaml');
    if (process.env.UPDATE_SNAPSHOTS === '1') writeFileSync(snapshot, yaml);
    assert.equal(yaml, readFileSync(snapshot, 'utf8'));
  });
});

describe("keepalived's syntax", () => {
  const one = (body: string, options: Partial<KeepalivedImportOptions> = {}) => convert(`virtual_server 192.0.2.1 80 {\n  lb_kind DR\n  lb_algo wrr\n${body}\n}\n`, options);

  test('comments with # or ! anywhere outside quotes, \\# and \\! escaped, quoted strings as one word', () => {
    const { config } = one('  real_server 192.0.2.2 80 { ! comment\n    weight 2 # comment\n    HTTP_GET {\n      url {\n        path "/a#b!c"  # not in the path\n        virtualhost a\\#b\n      }\n    }\n  }');
    const hc = config.services[0]!.healthCheck;
    assert.equal(hc.type === 'http' && hc.path, '/a%23b!c', 'the quoted # and ! are the path\'s; # is %-encoded in a request path');
    assert.equal(config.services[0]!.backends[0]!.weight, 2);
  });

  test('blocks on one line, "{" on the next line, nested blocks', () => {
    const { config } = convert('virtual_server 192.0.2.1 80\n{ lb_kind DR\n  real_server 192.0.2.2 80 { weight 5\n    TCP_CHECK { connect_port 81\n    }\n  }\n}\n');
    assert.deepEqual(config.services[0]!.healthCheck, { type: 'tcp', port: 81, interval: 60000, timeout: 5000, rise: 1, fall: 2 });
    assert.equal(config.services[0]!.backends[0]!.weight, 5);
  });

  test('parameters: $NAME and ${NAME}, replaced recursively, undefined ones left as they are; ${_HASH}', () => {
    const { config } = convert('$BASE=192.0.2.${SUB}\n$SUB=7\n$RS=192.0.2.9\nvirtual_server ${BASE} 80 {\n  lb_kind DR\n  real_server $RS 80 {\n    HTTP_GET {\n      url {\n        path \"/${_HASH}x\"\n      }\n    }\n  }\n}\n');
    assert.equal(config.services[0]!.vip, '192.0.2.7', 'BASE was defined before SUB: replaced when used');
    assert.equal(config.services[0]!.backends[0]!.address, '192.0.2.9');
    const hc = config.services[0]!.healthCheck;
    assert.equal(hc.type === 'http' && hc.path, '/%23x', 'in quotes: unquoted, the # it gives starts a comment, as in keepalived (it decomments after substituting)');
    const e = refusal('virtual_server $UNDEFINED 80 {\n  lb_kind DR\n}\n');
    assert.match(e.message, /\$UNDEFINED: not an IP address/);
  });

  test('~SEQ blocks are refused, unreadable; so are unclosed blocks, a stray "}", an open quote, a "{" with no keyword', () => {
    const cases: [string, RegExp][] = [
      ['~SEQ(N, 1, 3) virtual_server 192.0.2.$N 80 {\n}\n', /keepalived\.conf:1: ~SEQ blocks are not supported by xdplb import/],
      ['virtual_server 192.0.2.1 80 {\n  real_server 192.0.2.2 80 {\n}\n', /keepalived\.conf:1: the block of "virtual_server 192\.0\.2\.1 80" is not closed/],
      ['}\n', /keepalived\.conf:1: a '}' that closes no block/],
      ['virtual_server 192.0.2.1 80 {\n  virtualhost "abc\n}\n', /keepalived\.conf:2: a quote that is not closed/],
      ['{\n}\n', /keepalived\.conf:1: a '\{' with no keyword before it/],
    ];
    for (const [text, expected] of cases) {
      const err = refusal(text);
      assert.equal(err.code, 'CONFIG_UNREADABLE', text);
      assert.match(err.message, expected);
    }
  });

  test('include: relative to the including file, in glob order; a file that includes itself is refused', () => {
    const files: Record<string, string> = {
      'etc/a.conf': 'virtual_server 192.0.2.1 80 {\n  lb_kind DR\n  include rs/*.conf\n}\n',
      'etc/rs/1.conf': 'real_server 192.0.2.11 80 {\n}\n',
      'etc/rs/2.conf': 'real_server 192.0.2.12 80 {\n}\n',
      'loop.conf': 'include loop.conf\n',
    };
    const include = (pattern: string, dir: string) => {
      const prefix = `${dir === '.' ? '' : `${dir}/`}${pattern.replace('*.conf', '')}`;
      return Object.keys(files)
        .filter((p) => (pattern.includes('*') ? p.startsWith(prefix) && p.endsWith('.conf') : p === `${dir === '.' ? '' : `${dir}/`}${pattern}`))
        .sort()
        .map((path) => ({ path, text: files[path]! }));
    };
    const { config } = convert(files['etc/a.conf']!, { file: 'etc/a.conf', include });
    assert.deepEqual(config.services[0]!.backends.map((b) => b.address), ['192.0.2.11', '192.0.2.12']);
    assert.match(refusal(files['loop.conf']!, { file: 'loop.conf', include }).message, /loop\.conf: includes itself \(loop\.conf -> loop\.conf\)/);
    assert.match(refusal('include x.conf\n').message, /include x\.conf: includes are not read here/);
  });

  test('a virtual server with a TUN real server beside a DR one keeps the DR one; the same VIP twice is imported once', () => {
    const { config, warnings } = convert(
      'virtual_server 192.0.2.1 80 {\n  lb_kind DR\n  real_server 192.0.2.2 80 {\n  }\n  real_server 192.0.2.3 80 {\n    lvs_method TUN\n  }\n}\nvirtual_server 192.0.2.1 80 {\n  lb_kind DR\n}\n',
    );
    assert.deepEqual(config.services.map((s) => s.backends.map((b) => b.address)), [['192.0.2.2']]);
    assert.ok(warnings.some((w) => /^keepalived\.conf:9: not imported: virtual_server 192\.0\.2\.1 80: the same VIP, protocol and port as keepalived\.conf:1/.test(w)), warnings.join('\n'));
  });

  test('what keepalived ignores is ignored here too, and said: an unknown lb_algo (then wlc), unknown keywords, a bad weight', () => {
    const { config, warnings, yaml } = convert('virtual_server 192.0.2.1 80 {\n  lb_kind DR\n  lb_algo bogus\n  frobnicate 1\n  real_server 192.0.2.2 80 {\n    weight x\n    colour blue\n  }\n}\n');
    assert.equal(config.services[0]!.scheduler, 'maglev');
    assert.equal(config.services[0]!.backends[0]!.weight, 1);
    assert.deepEqual(warnings, [
      'keepalived.conf:3: lb_algo bogus: not an IPVS scheduler; ignored (as keepalived does)',
      'keepalived.conf:4: frobnicate 1: not a virtual_server keyword of keepalived 2.2; ignored',
      'keepalived.conf:6: weight x: not a weight; ignored (as keepalived does)',
      'keepalived.conf:7: colour blue: not a real_server keyword of keepalived 2.2; ignored',
    ]);
    assert.match(yaml, /no lb_algo: keepalived used wlc/);
  });

  test('a check on a port-less service that names no port: none, warned (the schema needs a port)', () => {
    const { config, warnings } = convert('virtual_server 192.0.2.1 0 {\n  lb_kind DR\n  persistence_timeout 60\n  real_server 192.0.2.2 {\n    TCP_CHECK {\n    }\n  }\n}\n');
    assert.deepEqual(config.services[0]!.healthCheck, { type: 'none' });
    assert.ok(warnings.some((w) => /the service has every port \(port 0\) and its check names none/.test(w)));
  });

  test('timers with fractions, a delay_loop over 1h clamped, nb_get_retry, a Host header xdplb cannot send dropped', () => {
    const { config, warnings } = one('  delay_loop 7200\n  real_server 192.0.2.2 80 {\n    HTTP_GET {\n      url {\n        path /\n      }\n      virtualhost "bad host"\n      connect_timeout 0.25\n      nb_get_retry 4\n    }\n  }');
    const hc = config.services[0]!.healthCheck;
    assert.ok(hc.type === 'http');
    assert.equal(hc.interval, 3_600_000);
    assert.equal(hc.timeout, 250);
    assert.equal(hc.fall, 5, 'nb_get_retry 4 (retry\'s old name): out after 5 failures');
    assert.equal(hc.host, undefined);
    assert.ok(warnings.some((w) => w.includes('delay_loop 2h: xdplb checks every 100ms to 1h: 1h')));
    assert.ok(warnings.some((w) => w.includes('virtualhost bad host: not a Host header xdplb can send')));
  });
});
