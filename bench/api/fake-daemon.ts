// The admin API over the test suite's FakeControl in a process of its own, for the API
// benchmark when no real nydusd can run: prints the socket path once it listens and
// serves until SIGTERM.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startApiServer } from '../../src/api/server.js';
import { FakeControl } from '../../test/api/fake-control.js';

const dir = mkdtempSync('/tmp/api-bench-');
const sock = join(dir, 'api.sock');
const control = new FakeControl({ stateKey: 'RUNNING.idle' });
await control.mount('/', { source: '/bootstrap', fs_type: 'rafs', config: '{}', prefetch_files: null });
const server = await startApiServer(control, sock);
process.stdout.write(sock + '\n');
process.once('SIGTERM', () => {
  void server.close().then(() => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
});
