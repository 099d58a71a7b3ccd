// Kernel-free frames through the protocol server (go-fuse protocol-server_test
// style): LOOKUP, GETATTR, READ, READDIR(PLUS), xattrs, lseek, EROFS for every
// modifying opcode, ENOSYS for unknown opcodes and missing methods, INTERRUPT,
// FORGET, and a throwing handler that answers EIO while the server goes on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { Opcode } from '../../src/fuse/abi.js';
import { ProtocolServer, type ProtocolOptions } from '../../src/fuse/protocol-server.js';
import type { FileSystem } from '../../src/fuse/filesystem.js';
import { MemoryFs } from '../helpers/memory-fs.js';
import { CaptureWriter, cstr, frame, initIn, parseAttr, parseDirents, parseEntry, readIn } from './frames.js';

const E = constants.errno;
const GiB = 2 ** 30;

function setup(fs: FileSystem = new MemoryFs(), opts: ProtocolOptions = {}) {
  const w = new CaptureWriter();
  const srv = new ProtocolServer(fs, w, opts);
  let unique = 100n;
  const send = (opcode: number, nodeid: bigint | number, body?: Buffer): bigint => {
    unique += 2n;
    const f = frame(opcode, unique, nodeid, body);
    srv.handle(f, f.length);
    return unique;
  };
  send(Opcode.INIT, 0, initIn(7, 45, 131072, 0x7fffffffn));
  w.take();
  return { w, srv, send };
}

test('LOOKUP answers entry_out with the image inode number; a missing name is ENOENT', async () => {
  const fs = new MemoryFs();
  const { w, srv, send } = setup(fs);
  const u = send(Opcode.LOOKUP, 1, cstr('hello.txt'));
  send(Opcode.LOOKUP, 1, cstr('nope'));
  await srv.idle();
  const [ok, missing] = w.take();
  assert.equal(ok.unique, u);
  assert.equal(ok.len, 16 + 128);
  const e = parseEntry(ok.body);
  const n = fs.resolve('hello.txt');
  assert.equal(e.nodeid, BigInt(n.ino));
  assert.deepEqual([e.entryValid, e.attrValid], [1n, 1n]);
  assert.deepEqual(
    [e.attr.ino, e.attr.size, e.attr.mode, e.attr.nlink, e.attr.uid, e.attr.gid, e.attr.mtime, e.attr.mtimensec, e.attr.blksize],
    [BigInt(n.ino), BigInt(n.size), n.mode, n.nlink, n.uid, n.gid, BigInt(n.mtime), n.mtimeNsec, 4096],
  );
  assert.deepEqual([missing.len, missing.error], [16, -E.ENOENT]);
});

test('GETATTR of an inode above 2^32 and of a char device', async () => {
  const fs = new MemoryFs();
  const { w, srv, send } = setup(fs);
  const big = fs.resolve('big-ino.txt');
  send(Opcode.GETATTR, BigInt(big.ino), Buffer.alloc(16));
  send(Opcode.GETATTR, fs.resolve('null').ino, Buffer.alloc(16));
  await srv.idle();
  const [a, c] = w.take();
  assert.equal(a.len, 16 + 104);
  assert.equal(a.body.readBigUInt64LE(0), 1n, 'attr_valid');
  assert.equal(parseAttr(a.body, 16).ino, 2n ** 40n + 13n);
  const dev = parseAttr(c.body, 16);
  assert.equal(dev.rdev, (1 << 8) | 3);
  assert.equal(dev.mode & 0o170000, 0o020000);
});

test('READ returns exact bytes across extent boundaries, beyond 4 GiB, and short only at EOF', async () => {
  const fs = new MemoryFs();
  const { w, srv, send } = setup(fs);
  const sparse = fs.resolve('sparse.img');
  const expectRange = (offset: number, size: number): Buffer => {
    const out = Buffer.alloc(Math.max(0, Math.min(size, sparse.size - offset)));
    for (const e of sparse.extents) {
      const from = Math.max(offset, e.offset);
      const to = Math.min(offset + out.length, e.offset + e.data.length);
      if (from < to) e.data.copy(out, from - offset, from - e.offset, to - e.offset);
    }
    return out;
  };
  const cases: [number, number][] = [
    [0, 8192],
    [4 * GiB - 4096, 8192],
    [4 * GiB + 1000, 4096],
    [sparse.size - 20, 4096],
    [sparse.size + 10, 4096],
  ];
  for (const [off, size] of cases) send(Opcode.READ, sparse.ino, readIn(0n, BigInt(off), size));
  await srv.idle();
  const replies = w.take();
  cases.forEach(([off, size], i) => {
    assert.equal(replies[i].error, 0);
    assert.deepEqual(replies[i].body, expectRange(off, size), `read at ${off}`);
  });
  assert.equal(replies[3].body.length, 20);
  assert.equal(replies[4].body.length, 0);
});

test('READ that returns more bytes than asked is answered EIO, never sent', async () => {
  const { w, srv, send } = setup({ read: () => Buffer.alloc(10) });
  send(Opcode.READ, 5, readIn(0n, 0n, 4));
  await srv.idle();
  assert.equal(w.take()[0].error, -E.EIO);
});

test('READDIRPLUS pages through a directory by offset without loss or duplicates', async () => {
  const fs = new MemoryFs();
  const { w, srv, send } = setup(fs);
  const dir = fs.resolve('big-dir');
  const seen: string[] = [];
  let offset = 0n;
  for (let pages = 0; pages < 10_000; pages++) {
    send(Opcode.READDIRPLUS, dir.ino, readIn(0n, offset, 4096));
    await srv.idle();
    const [r] = w.take();
    assert.equal(r.error, 0);
    const ents = parseDirents(r.body, true);
    if (ents.length === 0) break;
    for (const d of ents) {
      seen.push(d.name);
      if (d.name !== '.' && d.name !== '..') {
        assert.equal(d.entry!.nodeid, d.ino);
        assert.equal(d.entry!.attr.ino, d.ino);
        assert.equal(d.type, 8, 'DT_REG');
      }
    }
    offset = ents[ents.length - 1].off;
  }
  const names = [...dir.children!.keys()].sort();
  assert.deepEqual(seen, ['.', '..', ...names]);
});

test('READDIR (no plus) lists the root with dirent types', async () => {
  const fs = new MemoryFs();
  const { w, srv, send } = setup(fs);
  send(Opcode.READDIR, 1, readIn(0n, 0n, 4096));
  await srv.idle();
  const ents = parseDirents(w.take()[0].body, false);
  const byName = new Map(ents.map((d) => [d.name, d]));
  assert.equal(byName.get('link')!.type, 10, 'DT_LNK');
  assert.equal(byName.get('dir')!.type, 4, 'DT_DIR');
  assert.equal(byName.get('fifo')!.type, 1, 'DT_FIFO');
  assert.equal(byName.get('null')!.type, 2, 'DT_CHR');
  assert.equal(byName.get('hard-a')!.ino, BigInt(fs.resolve('dir/hard-b').ino));
});

test('GETXATTR/LISTXATTR: size queries, values, ERANGE, ENODATA', async () => {
  const fs = new MemoryFs();
  const { w, srv, send } = setup(fs);
  const ino = fs.resolve('hello.txt').ino;
  const getx = (size: number, name: string) => {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(size, 0);
    return Buffer.concat([b, cstr(name)]);
  };
  const listx = (size: number) => {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(size, 0);
    return b;
  };
  send(Opcode.GETXATTR, ino, getx(0, 'user.greeting'));
  send(Opcode.GETXATTR, ino, getx(100, 'user.greeting'));
  send(Opcode.GETXATTR, ino, getx(3, 'user.greeting'));
  send(Opcode.GETXATTR, ino, getx(100, 'user.none'));
  send(Opcode.LISTXATTR, ino, listx(0));
  send(Opcode.LISTXATTR, ino, listx(4096));
  await srv.idle();
  const [size, value, range, nodata, lsize, list] = w.take();
  assert.equal(size.body.readUInt32LE(0), 8);
  assert.equal(value.body.toString(), 'hi there');
  assert.equal(range.error, -E.ERANGE);
  assert.equal(nodata.error, -E.ENODATA);
  const names = 'user.greeting\0user.empty\0trusted.binary\0';
  assert.equal(lsize.body.readUInt32LE(0), Buffer.byteLength(names));
  assert.equal(list.body.toString(), names);
});

test('LSEEK SEEK_DATA / SEEK_HOLE follow the extents of the sparse file', async () => {
  const fs = new MemoryFs();
  const { w, srv, send } = setup(fs);
  const ino = fs.resolve('sparse.img').ino;
  const seek = (off: number, whence: number) => {
    const b = Buffer.alloc(24);
    b.writeBigUInt64LE(BigInt(off), 8);
    b.writeUInt32LE(whence, 16);
    send(Opcode.LSEEK, ino, b);
  };
  seek(0, 4);
  seek(5000, 3);
  seek(4 * GiB, 4);
  seek(5 * GiB + 100, 3);
  await srv.idle();
  const r = w.take();
  assert.equal(r[0].body.readBigUInt64LE(0), 4096n);
  assert.equal(r[1].body.readBigUInt64LE(0), BigInt(4 * GiB - 2048));
  assert.equal(r[2].body.readBigUInt64LE(0), BigInt(4 * GiB + 2048));
  assert.equal(r[3].error, -E.ENXIO);
});

test('every modifying opcode answers EROFS; unknown opcodes and missing methods ENOSYS', async () => {
  const { w, srv, send } = setup({});
  const modifying = [
    Opcode.SETATTR, Opcode.SYMLINK, Opcode.MKNOD, Opcode.MKDIR, Opcode.UNLINK, Opcode.RMDIR, Opcode.RENAME,
    Opcode.LINK, Opcode.WRITE, Opcode.SETXATTR, Opcode.REMOVEXATTR, Opcode.CREATE, Opcode.FALLOCATE,
    Opcode.RENAME2, Opcode.COPY_FILE_RANGE, Opcode.TMPFILE, Opcode.COPY_FILE_RANGE_64,
  ];
  for (const op of modifying) send(op, 1, Buffer.alloc(64));
  send(999, 1);
  send(Opcode.GETATTR, 1, Buffer.alloc(16));
  send(Opcode.READ, 1, readIn(0n, 0n, 10));
  send(Opcode.STATX, 1, Buffer.alloc(64));
  await srv.idle();
  const r = w.take();
  assert.deepEqual(r.slice(0, modifying.length).map((x) => x.error), modifying.map(() => -E.EROFS));
  assert.deepEqual(r.slice(modifying.length).map((x) => x.error), [-E.ENOSYS, -E.ENOSYS, -E.ENOSYS, -E.ENOSYS]);
  assert.ok(r.every((x) => x.len === 16));
});

test('INTERRUPT answers EINTR at once, aborts the signal and drops the late result', async () => {
  let resolveRead!: (b: Buffer) => void;
  let signal!: AbortSignal;
  const fs: FileSystem = {
    read: (_i, _f, _o, _s, ctx) => {
      signal = ctx.signal;
      return new Promise((r) => (resolveRead = r));
    },
  };
  const { w, srv, send } = setup(fs);
  const u = send(Opcode.READ, 5, readIn(0n, 0n, 10));
  assert.equal(srv.pending, 1);
  assert.deepEqual(srv.inflight().map((x) => [x.unique, x.opcode, x.nodeid]), [[Number(u), Opcode.READ, 5]]);
  const target = Buffer.alloc(8);
  target.writeBigUInt64LE(u);
  send(Opcode.INTERRUPT, 0, target);
  assert.equal(signal.aborted, true);
  resolveRead(Buffer.from('late'));
  await srv.idle();
  await new Promise((r) => setImmediate(r));
  const r = w.take();
  assert.equal(r.length, 1, 'one reply only');
  assert.deepEqual([r[0].unique, r[0].error], [u, -E.EINTR]);
});

test('a handler that throws unexpectedly answers EIO, is reported, and the server goes on', async () => {
  const errors: unknown[] = [];
  const fs: FileSystem = {
    getattr: (ino) => {
      if (ino === 2) throw new TypeError('bug');
      return { ino, mode: 0o40755, nlink: 2, uid: 0, gid: 0, size: 0, blocks: 0, rdev: 0, mtime: 0 };
    },
    lookup: async () => {
      throw new RangeError('async bug');
    },
  };
  const { w, srv, send } = setup(fs, { onError: (e) => errors.push(e) });
  const u1 = send(Opcode.GETATTR, 2, Buffer.alloc(16));
  const u2 = send(Opcode.LOOKUP, 1, cstr('x'));
  const u3 = send(Opcode.GETATTR, 1, Buffer.alloc(16));
  await srv.idle();
  const byUnique = new Map(w.take().map((x) => [x.unique, x.error]));
  assert.deepEqual([byUnique.get(u1), byUnique.get(u2), byUnique.get(u3)], [-E.EIO, -E.EIO, 0]);
  assert.equal(errors.length, 2);
});

test('FORGET and BATCH_FORGET reach the filesystem and get no reply; completions are reported', async () => {
  const forgotten: [number, number][] = [];
  const done: [number, number, number][] = [];
  const { w, srv, send } = setup(
    { forget: (ino, n) => forgotten.push([ino, n]) },
    { onComplete: (op, node, errno) => done.push([op, node, errno]) },
  );
  const one = Buffer.alloc(8);
  one.writeBigUInt64LE(3n);
  send(Opcode.FORGET, 7, one);
  const batch = Buffer.alloc(8 + 32);
  batch.writeUInt32LE(2, 0);
  batch.writeBigUInt64LE(8n, 8);
  batch.writeBigUInt64LE(1n, 16);
  batch.writeBigUInt64LE(2n ** 40n + 13n, 24);
  batch.writeBigUInt64LE(2n, 32);
  send(Opcode.BATCH_FORGET, 0, batch);
  await srv.idle();
  assert.equal(w.take().length, 0);
  assert.deepEqual(forgotten, [[7, 3], [8, 1], [2 ** 40 + 13, 2]]);
  assert.deepEqual(done, [[Opcode.INIT, 0, 0], [Opcode.FORGET, 7, 0], [Opcode.BATCH_FORGET, 0, 0]]);
});

test('OPEN keeps the page cache by default; STATFS and READLINK', async () => {
  const fs = new MemoryFs();
  const { w, srv, send } = setup(fs);
  send(Opcode.OPEN, fs.resolve('hello.txt').ino, Buffer.alloc(8));
  send(Opcode.STATFS, 1);
  send(Opcode.READLINK, fs.resolve('link').ino);
  await srv.idle();
  const [open, statfs, link] = w.take();
  assert.equal(open.body.readBigUInt64LE(0), BigInt(fs.resolve('hello.txt').ino));
  assert.equal(open.body.readUInt32LE(8), 2, 'FOPEN_KEEP_CACHE');
  assert.equal(statfs.len, 16 + 80);
  assert.deepEqual([statfs.body.readUInt32LE(40), statfs.body.readUInt32LE(44)], [4096, 255]);
  assert.equal(link.body.toString(), 'hello.txt');
});

test('malformed frames are reported and not answered', () => {
  const errors: unknown[] = [];
  const w = new CaptureWriter();
  const srv = new ProtocolServer(new MemoryFs(), w, { onError: (e) => errors.push(e) });
  const f = frame(Opcode.GETATTR, 4n, 1, Buffer.alloc(16));
  srv.handle(f, 30);
  srv.handle(f, f.length - 1);
  assert.equal(w.frames.length, 0);
  assert.equal(errors.length, 2);
});
