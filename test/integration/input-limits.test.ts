// Input the kernel or the RAFS format cannot hold is refused at the door: a mountpoint
// with a component over NAME_MAX or a path over PATH_MAX is a 400 with a JSON message
// (and the pseudo root still lists), and a tar member whose device numbers, ids, mode or
// time a RAFS inode cannot store fails `nydus-image create` with one line naming it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { V1 } from '../../src/api/paths.js';
import { encodeTarHeader, padding, tarTrailer, type TarEntry } from '../../src/util/tar-header.js';
import { haveFixtures, isRoot, need, V6_FIXTURE } from '../helpers/env.js';
import { runProgram } from '../helpers/run.js';
import { haveNydusd, startNydusd } from '../api/nydusd-process.js';

test('mountpoints over NAME_MAX or PATH_MAX: 400 with a JSON message; the root still lists', async (t) => {
  if (!(need(t, haveNydusd(), 'no nydusd') && need(t, isRoot() && existsSync('/dev/fuse'), 'needs root and /dev/fuse') && need(t, haveFixtures(), 'needs ../shared/fixtures'))) return;
  const d = await startNydusd(V6_FIXTURE, ['--virtual-mountpoint', '/base']);
  t.after(() => d.stop());
  const cmd = { source: join(V6_FIXTURE, 'bootstrap'), fs_type: 'rafs', config: JSON.stringify({ version: 2, backend: { type: 'localfs', localfs: { dir: join(d.dir, 'blobs') } } }) };
  const cases: [string, RegExp][] = [
    [`/${'n'.repeat(256)}`, /a component is longer than 255 bytes/],
    [`/ok/${'é'.repeat(128)}`, /a component is longer than 255 bytes/],
    [`/${'p/'.repeat(2048)}`, /longer than 4095 bytes/],
  ];
  for (const [mountpoint, why] of cases) {
    for (const method of ['POST', 'PUT']) {
      const r = await d.client.request(method, V1.mount, { query: { mountpoint }, body: cmd });
      assert.equal(r.status, 400, `${method} ${mountpoint.slice(0, 20)}: ${r.text}`);
      assert.match(r.headers['content-type'] ?? '', /application\/json/);
      const body = JSON.parse(r.text) as { error_code: string; description: string };
      assert.equal(body.error_code, 'ERR_API_BAD_REQUEST');
      assert.match(body.description, why);
      assert.ok(body.description.length < 300, 'the message does not echo the whole path');
    }
  }
  // A name of exactly 255 bytes mounts, and the root lists it beside /base.
  const longest = 'm'.repeat(255);
  assert.equal((await d.client.request('POST', V1.mount, { query: { mountpoint: `/${longest}` }, body: cmd })).status, 204);
  const ls = spawnSync('ls', ['-1', d.mnt], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(ls.status, 0, ls.stderr);
  assert.deepEqual(ls.stdout.trim().split('\n').sort(), ['base', longest]);
});

/** A tar of `entries` (no file data) plus a regular file, with the header bytes of member `patch` changed by `edit`. */
function tarOf(entries: TarEntry[], edit?: (header: Buffer) => void): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const h = encodeTarHeader(e);
    if (edit) {
      const ustar = h.subarray(h.length - 512);
      edit(ustar);
      // The checksum over the header with its own field read as spaces.
      ustar.fill(0x20, 148, 156);
      let sum = 0;
      for (const b of ustar) sum += b;
      ustar.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    }
    parts.push(h, Buffer.alloc(e.size), Buffer.alloc(padding(e.size)));
  }
  parts.push(tarTrailer());
  return Buffer.concat(parts);
}

const base = { mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1_700_000_000, mtimeNsec: 0 };

test('tar members a RAFS inode cannot hold: create fails with one line naming the member, for v5 and v6', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tar-limits-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cases: [string, Buffer, string[], RegExp][] = [
    ['major', tarOf([{ ...base, kind: 'char', path: Buffer.from('dev/wide'), devmajor: 0x7ffff, devminor: 1 }]), [], /tar member "dev\/wide": device 524287:1 \(major at most 4095, minor at most 1048575\) does not fit a RAFS inode/],
    ['minor', tarOf([{ ...base, kind: 'block', path: Buffer.from('dev/blk'), devmajor: 8, devminor: 0x100000 }]), [], /tar member "dev\/blk": device 8:1048576/],
    ['uid', tarOf([{ ...base, kind: 'file', path: Buffer.from('big-uid'), uid: 2 ** 32 }]), [], /tar member "big-uid": uid 4294967296 \(at most 4294967295\) does not fit/],
    ['gid', tarOf([{ ...base, kind: 'dir', path: Buffer.from('big-gid'), gid: 2 ** 40 }]), [], /tar member "big-gid\/": gid 1099511627776/],
    ['mtime', tarOf([{ ...base, kind: 'file', path: Buffer.from('old'), mtime: -86400, mtimeNsec: 5 }]), [], /tar member "old": mtime -86401 \(before 1970\) does not fit/],
    ['mode', tarOf([{ ...base, kind: 'file', path: Buffer.from('odd-mode') }], (h) => h.write('1777777\0', 100, 'latin1')), [], /member "odd-mode" at offset 0 has mode 1777777, which is no file mode/],
  ];
  for (const [name, tar, extra, want] of cases) {
    const file = join(dir, `${name}.tar`);
    writeFileSync(file, tar);
    for (const version of ['5', '6']) {
      const out = join(dir, `${name}-v${version}`);
      mkdirSync(out);
      const r = await runProgram('nydus-image', ['create', '--type', 'tar-rafs', '--fs-version', version, '--blob-dir', out, ...extra, file]);
      assert.equal(r.code, 1, `${name} v${version}: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^nydus-image: ERR_BUILD_SOURCE: /);
      assert.match(lines[0], want);
      assert.equal(spawnSync('ls', ['-A', out], { encoding: 'utf8' }).stdout, '', 'nothing half-written');
    }
  }
  // At the limits, the same members build: major 4095, minor 0xfffff, uid 2^32-1, a type-bit mode.
  const fits = tarOf(
    [
      { ...base, kind: 'char', path: Buffer.from('dev-max'), devmajor: 0xfff, devminor: 0xfffff },
      { ...base, kind: 'file', path: Buffer.from('uid-max'), uid: 2 ** 32 - 1 },
    ],
    (h) => {
      if (h.toString('latin1', 0, 7) === 'uid-max') h.write('0100644\0', 100, 'latin1');
    },
  );
  writeFileSync(join(dir, 'fits.tar'), fits);
  mkdirSync(join(dir, 'fits'));
  const ok = await runProgram('nydus-image', ['create', '--type', 'tar-rafs', '--blob-dir', join(dir, 'fits'), join(dir, 'fits.tar')]);
  assert.equal(ok.code, 0, ok.stderr);
});
