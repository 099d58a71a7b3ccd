// Runs poll.sh as a supervisor would: started before nydusd, it waits for the socket and
// then for RUNNING; asked for a state that never comes, it gives up with exit 1.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { haveFixtures, isRoot, need, REPO_ROOT, V6_FIXTURE } from '../../test/helpers/env.js';
import { haveNydusd, startNydusd } from '../../test/api/nydusd-process.js';

const POLL = join(REPO_ROOT, 'examples', 'poll-with-curl', 'poll.sh');

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('sh', [POLL, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('poll.sh waits for the socket, then for RUNNING', async (t) => {
  if (!need(t, spawnSync('curl', ['--version']).status === 0, 'needs curl')) return;
  if (!need(t, haveNydusd() && isRoot() && existsSync('/dev/fuse') && haveFixtures(), 'needs nydusd, root, /dev/fuse and the fixtures')) return;
  const dir = mkdtempSync('/tmp/api-example-poll-');
  const sock = join(dir, 'api.sock');
  const polling = run([sock]);
  const d = await startNydusd(V6_FIXTURE, [], dir);
  try {
    const r = await polling;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^poll: socket ${sock} is there\\n(poll: state [A-Z]+\\n)*poll: state RUNNING\\n$`));
    const never = await run([sock, 'STOPPED'], { STATE_ATTEMPTS: '3' });
    assert.equal(never.code, 1);
    assert.match(never.stderr, /^poll: state is RUNNING, not STOPPED, after 3 attempts$/m);
  } finally {
    await d.stop();
  }
});

test('poll.sh gives up when no socket appears', async (t) => {
  if (!need(t, spawnSync('curl', ['--version']).status === 0, 'needs curl')) return;
  const dir = mkdtempSync('/tmp/api-example-poll-');
  try {
    const r = await run([join(dir, 'none.sock')], { SOCKET_ATTEMPTS: '2' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^poll: no socket at .*none\.sock after 2 attempts$/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
