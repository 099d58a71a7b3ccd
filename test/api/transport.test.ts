// The HTTP transport as a supervisor meets it, over the real unix socket: exact paths,
// the body rules of dbs-uhttp (Content-Length, 51200 bytes), HTTP/1.0 and keep-alive,
// an idle connection that is never closed, socket mode 0600, stale versus live sockets,
// close() semantics, 300 mount/umount cycles, and reads that never wait for a write.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync, statSync, writeFileSync, unlinkSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ApiClient } from '../../src/api/client.js';
import { MAX_BODY_BYTES, V1 } from '../../src/api/paths.js';
import { startApiServer } from '../../src/api/server.js';
import { NydusError } from '../../src/errors.js';
import { waitUntil } from '../helpers/wait.js';
import { FakeControl } from './fake-control.js';
import { checked, failed, RawConnection, rawRequest, serveFake, tmpDir } from './helpers.js';

const MOUNT = { source: '/b', fs_type: 'rafs', config: '{}', prefetch_files: null };

describe('paths and request framing', () => {
  test('paths match exactly: trailing slash, prefix, suffix and case are 404 NoRoute', async () => {
    const s = await serveFake();
    try {
      for (const p of ['/api/v1/daemon/', '/api/v1', '/api/v1/daemon/events/x', '/API/v1/daemon', '/', '/api/v3/daemon']) {
        failed(await s.client.request('GET', p), 404, 'NoRoute', 'ERR_API_NO_ROUTE');
      }
      checked(await s.client.request('GET', `${V1.daemon}?x=1`), 200);
    } finally {
      await s.close();
    }
  });

  test('a body of exactly 51200 bytes is read; one byte more is 413 and the connection closes unread', async () => {
    const s = await serveFake();
    try {
      const base = JSON.stringify({ log_level: 'warn', pad: '' });
      const body = JSON.stringify({ log_level: 'warn', pad: 'x'.repeat(MAX_BODY_BYTES - base.length) });
      assert.equal(body.length, MAX_BODY_BYTES);
      checked(await s.client.request('PUT', V1.daemon, { body }), 204);
      assert.equal(s.control.logLevel, 'warn');

      const c = await RawConnection.open(s.sock);
      c.send(`PUT ${V1.daemon} HTTP/1.1\r\nHost: x\r\nContent-Length: ${MAX_BODY_BYTES + 1}\r\n\r\n{"log_level":`);
      const res = await c.read();
      assert.equal(res.status, 413);
      assert.equal(res.headers.server, 'Nydus API');
      assert.equal(res.headers['content-type'], 'application/json');
      assert.equal(JSON.parse(res.body).error_code, 'ERR_API_BODY_TOO_LARGE');
      assert.equal(res.closed, true);
      c.close();
    } finally {
      await s.close();
    }
  });

  test('a chunked body (no Content-Length) is 411 and closes the connection', async () => {
    const s = await serveFake();
    try {
      const body = '{"log_level":"info"}';
      const res = await rawRequest(
        s.sock,
        `PUT ${V1.daemon} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
      );
      assert.equal(res.status, 411);
      assert.equal(JSON.parse(res.body).error_code, 'ERR_API_LENGTH_REQUIRED');
      assert.equal(res.closed, true);
    } finally {
      await s.close();
    }
  });

  test('Content-Length: 0 is no body; HTTP/1.0 works; 204 has no Content-Length but both upstream headers', async () => {
    const s = await serveFake();
    try {
      const res = await rawRequest(s.sock, `PUT ${V1.start} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
      assert.equal(res.status, 204);
      assert.equal(res.headers.server, 'Nydus API');
      assert.equal(res.headers['content-type'], 'application/json');
      assert.equal(res.headers['content-length'], undefined);
      assert.equal(res.body, '');
      const old = await rawRequest(s.sock, `GET ${V1.daemon} HTTP/1.0\r\n\r\n`);
      assert.equal(old.status, 200);
      assert.equal(JSON.parse(old.body).state, 'RUNNING');
    } finally {
      await s.close();
    }
  });
});

describe('connections', () => {
  test('an idle kept-alive connection stays open for more than 6 s and still answers', async () => {
    const s = await serveFake();
    const c = await RawConnection.open(s.sock);
    try {
      c.send(`GET ${V1.daemon} HTTP/1.1\r\nHost: x\r\n\r\n`);
      assert.equal((await c.read()).status, 200);
      assert.equal(await c.waitClosed(6500), false, 'the server closed an idle connection');
      c.send(`GET ${V1.metricsInflight} HTTP/1.1\r\nHost: x\r\n\r\n`);
      const res = await c.read();
      assert.equal(res.status, 204);
      assert.equal(res.closed, false);
    } finally {
      c.close();
      await s.close();
    }
  });

  test('64 concurrent connections are all answered', async () => {
    const s = await serveFake();
    try {
      const clients = Array.from({ length: 64 }, () => new ApiClient(s.sock));
      const infos = await Promise.all(clients.map((c) => c.info()));
      assert.ok(infos.every((i) => i.state === 'READY'));
      clients.forEach((c) => c.close());
    } finally {
      await s.close();
    }
  });
});

describe('the socket file', () => {
  test('is mode 0600 and no temp file is left beside it', async () => {
    const s = await serveFake();
    try {
      assert.equal(statSync(s.sock).mode & 0o777, 0o600);
      assert.ok(statSync(s.sock).isSocket());
      assert.deepEqual(readdirSync(s.dir), ['api.sock']);
    } finally {
      await s.close();
    }
  });

  test('a stale socket from a killed process is replaced', async () => {
    const dir = tmpDir('stale');
    const sock = join(dir, 'api.sock');
    try {
      const r = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`]);
      assert.equal(r.signal, 'SIGKILL');
      assert.ok(statSync(sock).isSocket());
      const server = await startApiServer(new FakeControl(), sock);
      const client = new ApiClient(sock);
      assert.equal((await client.info()).state, 'READY');
      assert.equal(statSync(sock).mode & 0o777, 0o600);
      client.close();
      await server.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a live socket is refused with ERR_API_SOCKET_IN_USE and keeps serving', async () => {
    const s = await serveFake();
    try {
      await assert.rejects(startApiServer(new FakeControl(), s.sock), (err: NydusError) => {
        assert.equal(err.code, 'ERR_API_SOCKET_IN_USE');
        assert.doesNotMatch(err.message, /\n/);
        return true;
      });
      assert.equal((await s.client.info()).state, 'READY');
      assert.deepEqual(readdirSync(s.dir), ['api.sock']);
    } finally {
      await s.close();
    }
  });

  test('a regular file at the path is refused and left alone', async () => {
    const dir = tmpDir('file');
    const path = join(dir, 'api.sock');
    try {
      writeFileSync(path, 'keep me');
      await assert.rejects(startApiServer(new FakeControl(), path), { code: 'ERR_API_LISTEN' });
      assert.equal(readFileSync(path, 'utf8'), 'keep me');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('close() ends idle connections, removes the socket, and a client then gets ERR_API_UNAVAILABLE', async () => {
    const s = await serveFake();
    const c = await RawConnection.open(s.sock);
    c.send(`GET ${V1.daemon} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await c.read();
    await s.close();
    assert.equal(await c.waitClosed(1000), true);
    assert.throws(() => statSync(s.sock), { code: 'ENOENT' });
    const client = new ApiClient(s.sock);
    await assert.rejects(client.info(), (err: NydusError) => err.code === 'ERR_API_UNAVAILABLE' && err.message.includes('ENOENT'));
  });

  test('close() lets an answer in flight go out first (exit, then close)', async () => {
    const s = await serveFake({ stateKey: 'RUNNING.idle' });
    let release!: () => void;
    s.control.gate = new Promise((r) => (release = r));
    // Its own client: s.close() destroys s.client's connections first.
    const client = new ApiClient(s.sock);
    const pending = client.request('PUT', V1.exit);
    await waitUntil(() => s.control.calls.includes('exit'), 'the exit reached the daemon', { everyMs: 5 });
    const closing = s.close();
    release();
    checked(await pending, 204);
    await closing;
    assert.equal(s.control.state, 'STOPPED');
    client.close();
  });

  test('close() leaves a socket file that another server has since bound', async () => {
    const dir = tmpDir('succ');
    const sock = join(dir, 'api.sock');
    try {
      const first = await startApiServer(new FakeControl(), sock);
      unlinkSync(sock);
      const second = await startApiServer(new FakeControl({ stateKey: 'RUNNING.idle' }), sock);
      await first.close();
      const client = new ApiClient(sock);
      assert.equal((await client.info()).state, 'RUNNING');
      client.close();
      await second.close();
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('concurrency', () => {
  test('300 mount/umount cycles on one kept-alive connection', async () => {
    const s = await serveFake();
    try {
      for (let i = 0; i < 300; i++) {
        await s.client.mount(`/m${i % 7}`, MOUNT);
        await s.client.umount(`/m${i % 7}`);
      }
      assert.equal(s.control.mounts.size, 0);
      assert.equal(s.control.calls.length, 600);
      assert.deepEqual((await s.client.info()).backend_collection, {});
    } finally {
      await s.close();
    }
  });

  test('reads are answered while a slow write is pending; writes stay in order', async () => {
    const s = await serveFake();
    try {
      let release!: () => void;
      s.control.gate = new Promise((r) => (release = r));
      let mounted = false;
      const mount = s.client.mount('/slow', MOUNT).then(() => (mounted = true));
      const umount = s.client.umount('/slow');
      await waitUntil(() => s.control.calls.includes('mount /slow'), 'the mount reached the daemon', { everyMs: 5 });
      const reader = new ApiClient(s.sock);
      for (let i = 0; i < 20; i++) {
        const info = await reader.info();
        assert.equal(info.state, 'READY');
        assert.deepEqual(info.backend_collection, {});
        checked(await reader.request('GET', V1.metricsInflight), 204);
      }
      assert.equal(mounted, false);
      release();
      await mount;
      await umount;
      assert.deepEqual(s.control.calls, ['mount /slow', 'umount /slow']);
      reader.close();
    } finally {
      s.control.gate = null;
      await s.close();
    }
  });
});
