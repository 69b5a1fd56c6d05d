// The local API with fake handlers, alone in a process, for the memory test
// of api.test.ts: GET /v1/state answers with this process's peak RSS and heap.
// Usage: node api-fixture.ts SOCKET_PATH (prints "listening" when it does).
import { startApi } from '../../src/director/api.ts';

const quiet = { info() {}, warn() {}, error() {} };
const server = await startApi(
  { address: { kind: 'unix', path: process.argv[2]! }, pinDir: '/x', log: quiet },
  {
    daemon: () => ({ pid: process.pid, pinDir: '/x', configPath: '/x' }),
    state: () => ({ maxRssKiB: process.resourceUsage().maxRSS, heapUsed: process.memoryUsage().heapUsed }),
    setOverride: () => null,
    setRole: () => ({ was: 'active' }),
    setDrained: () => ({ was: false }),
  },
);
process.stdout.write('listening\n');
process.once('SIGTERM', () => server.close());
