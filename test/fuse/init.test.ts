// INIT negotiation through the protocol server, kernel-free: golden reply
// bytes for several kernel protocol minors, major mismatches, and restoring
// saved InitParams on a server that never sees INIT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Opcode } from '../../src/fuse/abi.js';
import { ProtocolServer } from '../../src/fuse/protocol-server.js';
import { validateInitParams, type InitParams } from '../../src/fuse/init.js';
import { MemoryFs } from '../helpers/memory-fs.js';
import { CaptureWriter, frame, initIn, cstr } from './frames.js';

// Every low flag 0..30 and flags2 bits 32..39, as a 7.40+ kernel offers them.
const KERNEL_FLAGS = 0x7fffffffn | (0xffn << 32n);

function serve(minor: number, flags = KERNEL_FLAGS, major = 7): { w: CaptureWriter; srv: ProtocolServer } {
  const w = new CaptureWriter();
  const srv = new ProtocolServer(new MemoryFs(), w);
  srv.handle(...withLen(frame(Opcode.INIT, 2n, 0, initIn(major, minor, 131072, flags))));
  return { w, srv };
}

function withLen(b: Buffer): [Buffer, number] {
  return [b, b.length];
}

test('INIT 7.45 with INIT_EXT: full 64-byte reply, golden bytes', () => {
  const { w, srv } = serve(45);
  const [r] = w.frames;
  const expected =
    '50000000' + '00000000' + '0200000000000000' + // out header: len 80, error 0, unique 2
    '07000000' + '2d000000' + '00000200' + // major 7, minor 45, max_readahead 131072
    '2160e440' + // ASYNC_READ|BIG_WRITES|DO_READDIRPLUS|READDIRPLUS_AUTO|PARALLEL_DIROPS|ABORT_ERROR|MAX_PAGES|CACHE_SYMLINKS|INIT_EXT
    '4000' + '3000' + '00000200' + '01000000' + // max_background 64, congestion 48, max_write 131072, time_gran 1
    '0001' + '0000' + '00000000' + // max_pages 256, map_alignment 0, flags2 0
    '00'.repeat(28);
  assert.equal(r.toString('hex'), expected);
  assert.equal(srv.initParams?.minor, 45);
  assert.equal(srv.initParams?.kernelFlags, Number(KERNEL_FLAGS));
});

test('INIT from a newer kernel minor is answered with ours', () => {
  const { w, srv } = serve(99);
  assert.equal(w.frames[0].readUInt32LE(16 + 4), 45);
  assert.equal(srv.initParams?.kernelMinor, 99);
});

test('INIT 7.31: 16-byte init_in, no flags2, still the 64-byte reply', () => {
  const { w } = serve(31, 0x7fffffffn);
  const r = w.frames[0];
  assert.equal(r.length, 16 + 64);
  assert.equal(r.readUInt32LE(20), 31);
  // INIT_EXT is echoed only when offered; 0x7fffffff offers it, so flags2 is present but zero.
  assert.equal(r.readUInt32LE(16 + 32), 0);
  assert.equal(r.readUInt16LE(16 + 28), 256);
});

test('INIT 7.22: compat 24-byte reply without max_pages', () => {
  const { w, srv } = serve(22, 0x3fffn);
  const r = w.frames[0];
  assert.equal(r.length, 16 + 24);
  assert.equal(r.readUInt32LE(0), 40);
  assert.equal(r.readUInt32LE(20), 22);
  // Offered 0x3fff: we take ASYNC_READ, BIG_WRITES, DO_READDIRPLUS (no AUTO, no MAX_PAGES, no PARALLEL_DIROPS).
  assert.equal(r.readUInt32LE(16 + 12), 0x1 | 0x20 | 0x2000);
  assert.equal(srv.initParams?.maxPages, 32);
});

test('INIT 7.4: 8-byte init_in and 8-byte reply', () => {
  const { w } = serve(4, 0n);
  const r = w.frames[0];
  assert.equal(r.toString('hex'), '18000000' + '00000000' + '0200000000000000' + '07000000' + '04000000');
});

test('INIT with a newer major answers our major.minor only; an older one is EPROTO', () => {
  const a = serve(1, 0n, 8);
  assert.equal(a.w.frames[0].toString('hex').slice(32), '07000000' + '2d000000');
  assert.equal(a.srv.initParams, undefined);
  const b = serve(30, 0n, 6);
  assert.equal(b.w.frames[0].readInt32LE(4), -71);
});

test('INIT options: readdirplus off, export support, smaller limits', () => {
  const w = new CaptureWriter();
  const srv = new ProtocolServer(new MemoryFs(), w, {
    init: { readdirplus: 'off', exportSupport: true, maxPages: 64, maxBackground: 16, maxReadahead: 4096 },
  });
  srv.handle(...withLen(frame(Opcode.INIT, 2n, 0, initIn(7, 45, 131072, KERNEL_FLAGS))));
  const p = srv.initParams!;
  const flags = w.frames[0].readUInt32LE(16 + 12);
  assert.equal(flags & 0x2000, 0);
  assert.equal(flags & 0x10, 0x10);
  assert.deepEqual([p.maxPages, p.maxBackground, p.congestionThreshold, p.maxReadahead], [64, 16, 12, 4096]);
});

test('restored InitParams serve requests without INIT, with compat sizes of the saved minor', async () => {
  const { srv: first } = serve(8, 0x3fffn);
  const saved = JSON.parse(JSON.stringify(first.initParams)) as InitParams;
  const w = new CaptureWriter();
  const srv = new ProtocolServer(new MemoryFs(), w);
  srv.restore(saved);
  assert.deepEqual(await srv.whenInitialized(), saved);
  srv.handle(...withLen(frame(Opcode.LOOKUP, 10n, 1, cstr('hello.txt'))));
  const r = w.frames[0];
  assert.equal(r.length, 16 + 120, 'minor 8 uses the 120-byte compat entry_out');
  assert.equal(r.readBigUInt64LE(16), 2n);
  assert.equal(r.readBigUInt64LE(16 + 40), 2n, 'attr.ino');
});

test('validateInitParams refuses garbage with ERR_FUSE_SESSION', () => {
  assert.throws(() => validateInitParams({ major: 7 }), { code: 'ERR_FUSE_SESSION' });
  assert.throws(() => validateInitParams(null), { code: 'ERR_FUSE_SESSION' });
  const { srv } = serve(45);
  assert.throws(() => validateInitParams({ ...srv.initParams, major: 8 }), { code: 'ERR_FUSE_SESSION' });
});
