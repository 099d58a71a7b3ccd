// The supervisor socket protocol (docs/contract.md §4.1) through the addon:
// bytes and an fd across processes (the received fd is the same open file),
// states larger than nydusd's 32 KiB first segment, peers that send no fd or
// close early, timeouts and cancellation, and dup/close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { closeFd, dupFd, receiveStateWithFd, sendStateWithFd, SupervisorListener } from '../../src/native/index.js';
import { FROM_SOURCE } from '../helpers/env.js';
import { patternBytes } from '../helpers/memory-fs.js';
import { run } from '../conformance/child.js';

const peerScript = fileURLToPath(new URL(FROM_SOURCE ? './fd-peer.ts' : './fd-peer.js', import.meta.url));

function peer(args: string[]) {
  return run(process.execPath, FROM_SOURCE ? ['--import', 'tsx', peerScript, ...args] : [peerScript, ...args]);
}

function tempDir(t: import('node:test').TestContext): string {
  const dir = mkdtempSync('/tmp/native-fdpass-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('a daemon process sends 100 KiB of state and an fd; the supervisor keeps the same open file', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'payload.txt');
  writeFileSync(file, 'the very same file\n');
  const sup = SupervisorListener.listen(join(dir, 'sup.sock'));
  t.after(() => sup.close());
  const receiving = sup.receive({ timeoutMs: 10_000 });
  const sent = await peer(['send', sup.path, file, String(100 * 1024)]);
  assert.equal(sent.code, 0, sent.stdout.toString());
  const got = await receiving;
  t.after(() => closeFd(got.fd));
  assert.deepEqual(got.data, patternBytes(7, 100 * 1024));
  assert.equal(fstatSync(got.fd).ino, statSync(file).ino);
  const buf = Buffer.alloc(64);
  assert.equal(buf.subarray(0, readSync(got.fd, buf, 0, 64, 0)).toString(), 'the very same file\n');
});

test('a daemon process receives state over 32 KiB and the fd from the supervisor, reading until EOF', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'handed.txt');
  writeFileSync(file, 'handed over\n');
  const fd = openSync(file, 'r');
  t.after(() => closeSync(fd));
  const state = patternBytes(9, 70_000);
  const sup = SupervisorListener.listen(join(dir, 'sup.sock'));
  t.after(() => sup.close());
  const sending = sup.send(state, fd, { timeoutMs: 10_000 });
  const r = await peer(['receive', sup.path]);
  await sending;
  assert.equal(r.code, 0, r.stdout.toString());
  const out = JSON.parse(r.stdout.toString());
  assert.deepEqual(out, { length: state.length, sha256: sha(state), fds: 1, ino: statSync(file).ino, content: 'handed over\n' });
});

test('a peer that sends bytes but no fd is refused with a clear error, on both sides', async (t) => {
  const dir = tempDir(t);
  const sup = SupervisorListener.listen(join(dir, 'sup.sock'));
  t.after(() => sup.close());
  const receiving = sup.receive({ timeoutMs: 10_000 });
  const c = createConnection(sup.path, () => c.end('state without fd'));
  await assert.rejects(receiving, { code: 'ERR_DAEMON_UPGRADE', message: /sent no file descriptor/ });

  const path = join(dir, 'plain.sock');
  const server = createServer((s) => s.end(Buffer.alloc(50_000, 1)));
  await new Promise<void>((r) => server.listen(path, r));
  t.after(() => server.close());
  await assert.rejects(receiveStateWithFd(path, { timeoutMs: 10_000 }), { code: 'ERR_DAEMON_UPGRADE', message: /sent no file descriptor/ });
});

test('a peer that closes early: nothing received is an error, not an empty state', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'early.sock');
  const server = createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(path, r));
  t.after(() => server.close());
  await assert.rejects(receiveStateWithFd(path, { timeoutMs: 10_000 }), { code: 'ERR_DAEMON_UPGRADE', message: /closed without sending anything/ });

  const sup = SupervisorListener.listen(join(dir, 'sup.sock'));
  t.after(() => sup.close());
  const receiving = sup.receive({ timeoutMs: 10_000 });
  const c = createConnection(sup.path, () => c.destroy());
  await assert.rejects(receiving, { code: 'ERR_DAEMON_UPGRADE', message: /no file descriptor/ });
});

test('connect failures, empty states, timeouts and cancellation carry the OS error', async (t) => {
  const dir = tempDir(t);
  const fd = openSync(join(dir, 'x'), 'w');
  t.after(() => closeSync(fd));
  await assert.rejects(sendStateWithFd(join(dir, 'missing.sock'), Buffer.from('s'), fd), (err: Error & { code: string; cause: NodeJS.ErrnoException }) => {
    assert.equal(err.code, 'ERR_DAEMON_UPGRADE');
    assert.equal(err.cause.code, 'ENOENT');
    assert.equal(err.cause.syscall, 'connect');
    return true;
  });
  await assert.rejects(sendStateWithFd(join(dir, 'missing.sock'), Buffer.alloc(0), fd), { code: 'ERR_DAEMON_UPGRADE', message: /empty/ });
  const sup = SupervisorListener.listen(join(dir, 'sup.sock'));
  await assert.rejects(sup.receive({ timeoutMs: 100 }), (err: Error & { cause: NodeJS.ErrnoException }) => err.cause.code === 'ETIMEDOUT');
  await assert.rejects(sup.send(Buffer.from('s'), fd, { timeoutMs: 100 }), (err: Error & { cause: NodeJS.ErrnoException }) => err.cause.code === 'ETIMEDOUT');
  const pending = sup.receive();
  setImmediate(() => sup.close());
  await assert.rejects(pending, (err: Error & { cause: NodeJS.ErrnoException }) => err.cause.code === 'ECANCELED');
  await assert.rejects(sup.receive(), { code: 'ERR_DAEMON_UPGRADE', message: /listener is closed/ });
});

test('dupFd gives another fd on the same open file; closeFd releases it', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'dup.txt');
  writeFileSync(file, 'dup');
  const fd = openSync(file, 'r');
  t.after(() => closeSync(fd));
  const copy = dupFd(fd);
  assert.notEqual(copy, fd);
  assert.equal(fstatSync(copy).ino, fstatSync(fd).ino);
  closeFd(copy);
  assert.throws(() => fstatSync(copy), { code: 'EBADF' });
  assert.throws(() => dupFd(copy), { code: 'ERR_FUSE_SESSION' });
});
