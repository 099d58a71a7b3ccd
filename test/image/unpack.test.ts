// nydus-image unpack on the upstream fixtures: the tar GNU tar extracts equals the image
// (names, types, modes, owners, mtimes with nanoseconds, symlinks, hard links, bytes).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { haveFixtures, need, V5_FIXTURE, V6_FIXTURE } from '../helpers/env.js';
import { runCommand, runProgram } from '../helpers/run.js';
import { openBootstrap, walk } from '../../src/rafs/index.js';
import { S_IFLNK, S_IFMT, S_IFREG } from '../../src/rafs/layout/common.js';

const work = mkdtempSync(join(tmpdir(), 'nydus-unpack-'));
after(() => rmSync(work, { recursive: true, force: true }));

async function unpackAndExtract(fixture: string, name: string): Promise<string> {
  const tar = join(work, `${name}.tar`);
  const r = await runProgram('nydus-image', ['unpack', '--bootstrap', join(fixture, 'bootstrap'), '--blob-dir', join(fixture, 'blobs'), '--output', tar]);
  assert.equal(r.code, 0, r.stderr);
  const dir = join(work, name);
  mkdirSync(dir);
  const x = await runCommand('tar', ['--xattrs', "--xattrs-include=*", '--numeric-owner', '-xpf', tar, '-C', dir]);
  assert.equal(x.code, 0, x.stderr);
  assert.equal(x.stderr, '');
  return dir;
}

async function compareTree(fixture: string, dir: string): Promise<number> {
  const sb = await openBootstrap(join(fixture, 'bootstrap'));
  const inodeOf = new Map<number, number>();
  let n = 0;
  for (const e of walk(sb)) {
    const p = join(dir, e.path.toString());
    const st = lstatSync(p, { bigint: true });
    const where = e.path.toString();
    assert.equal(Number(st.mode), e.attr.mode, `${where} mode`);
    assert.equal(Number(st.uid), e.attr.uid, `${where} uid`);
    assert.equal(Number(st.gid), e.attr.gid, `${where} gid`);
    const type = e.attr.mode & S_IFMT;
    if (type !== S_IFLNK) {
      assert.equal(st.mtimeNs, BigInt(e.attr.mtime) * 1_000_000_000n + BigInt(e.attr.mtimeNsec), `${where} mtime`);
    }
    if (type === S_IFREG) {
      assert.equal(Number(st.size), e.attr.size, `${where} size`);
      assert.equal(Number(st.nlink), e.attr.nlink, `${where} nlink`);
      const seen = inodeOf.get(e.ino);
      if (seen === undefined) inodeOf.set(e.ino, Number(st.ino));
      else assert.equal(Number(st.ino), seen, `${where} is a hard link of an earlier name`);
    }
    if (type === S_IFLNK) assert.deepEqual(Buffer.from(readlinkSync(p, { encoding: 'buffer' })), sb.readlink(e.ino), `${where} target`);
    n++;
  }
  return n;
}

function countEntries(dir: string): number {
  let n = 1;
  for (const name of readdirSync(dir)) {
    n++;
    const p = join(dir, name);
    if (lstatSync(p).isDirectory()) n += countEntries(p) - 1;
  }
  return n;
}

test('unpack v5 fixture: extracted tree equals the image, hard links are links', async (t) => {
  if (!need(t, haveFixtures(), 'shared fixtures missing')) return;
  const dir = await unpackAndExtract(V5_FIXTURE, 'v5');
  const n = await compareTree(V5_FIXTURE, dir);
  assert.equal(countEntries(dir), n, 'no extra entries');
  const a = lstatSync(join(dir, 'hardlink-test/foo'));
  const b = lstatSync(join(dir, 'normal-file-test/test.sh'));
  assert.equal(a.ino, b.ino);
  assert.equal(a.nlink, 3);
});

test('unpack v6 fixture: exactly lib.rs and sync_io.rs with the recorded sha256', async (t) => {
  if (!need(t, haveFixtures(), 'shared fixtures missing')) return;
  const dir = await unpackAndExtract(V6_FIXTURE, 'v6');
  await compareTree(V6_FIXTURE, dir);
  assert.deepEqual(readdirSync(dir).sort(), ['lib.rs', 'sync_io.rs']);
  const sha = (f: string) => createHash('sha256').update(readFileSync(join(dir, f))).digest('hex');
  assert.equal(sha('lib.rs'), '1810eba864521293bb0d6b55a3c82318d4d89f294ed761c456d9088a17de0c69');
  assert.equal(sha('sync_io.rs'), 'e629ab260ff0dc02a24648a3e0dd8c13a5daf233d535c330e3201925f5eeff96');
});

test('unpack with a missing blob fails with one line and leaves no output', async (t) => {
  if (!need(t, haveFixtures(), 'shared fixtures missing')) return;
  const empty = join(work, 'no-blobs');
  mkdirSync(empty);
  const out = join(work, 'missing.tar');
  const r = await runProgram('nydus-image', ['unpack', '-B', join(V6_FIXTURE, 'bootstrap'), '-D', empty, '--output', out]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^nydus-image: ERR_STORAGE_BLOB_NOT_FOUND: .+\n$/);
  assert.equal(existsSync(out), false);
  assert.deepEqual(readdirSync(work).filter((f) => f.includes('partial')), []);
});
