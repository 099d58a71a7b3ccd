// PseudoFs without a kernel: node ids (root, index * 2^32 + ino, hashed pseudo dirs),
// images at sub-paths and at `/` (which hides the pseudo tree, as upstream), stale ids
// after umount, remount at a fresh index, pruning, the invalidations the kernel is
// sent, and 300 mount/umount cycles whose node ids never repeat.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toErrno, NydusError } from '../../src/errors.js';
import { PseudoFs, normalizeMountpoint, type ImageMount, type KernelNotifier } from '../../src/fs/pseudo-fs.js';
import { INDEX_SPAN, MAX_INDEX, PSEUDO_BASE, ROOT_ID, pseudoDirId } from '../../src/fs/node-id.js';
import { haveFixtures, need } from '../helpers/env.js';
import { V5_BLOBS, V5_BOOTSTRAP, V6_BLOBS, V6_BOOTSTRAP } from '../rafs/helpers/fixtures.js';
import { ListSink, openImage, type OpenedImage } from './helpers.js';

const ESTALE = 116;
const ENOENT = 2;

function errnoOf(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    return toErrno(e);
  }
  return 0;
}

class RecordingNotifier implements KernelNotifier {
  readonly calls: string[] = [];
  async invalEntry(parent: number, name: Buffer): Promise<void> {
    this.calls.push(`entry ${parent} ${name}`);
  }
  async invalInode(nodeId: number): Promise<void> {
    this.calls.push(`inode ${nodeId}`);
  }
}

async function images(t: import('node:test').TestContext): Promise<{ v5: OpenedImage; v6: OpenedImage } | undefined> {
  if (!need(t, haveFixtures(), 'fixtures missing')) return undefined;
  const v5 = await openImage(V5_BOOTSTRAP, V5_BLOBS);
  const v6 = await openImage(V6_BOOTSTRAP, V6_BLOBS);
  t.after(async () => {
    await v5.close();
    await v6.close();
  });
  return { v5, v6 };
}

function names(fs: PseudoFs, node: number): string[] {
  const sink = new ListSink(true);
  fs.readdir(node, 0, 0, sink);
  return sink.entries.map((e) => e.name);
}

test('mountpoints normalize as upstream walks paths; relative ones are refused', () => {
  assert.equal(normalizeMountpoint('/a//b/./c/'), '/a/b/c');
  assert.equal(normalizeMountpoint('/../a'), '/a');
  assert.equal(normalizeMountpoint('/'), '/');
  assert.throws(() => normalizeMountpoint('a/b'), (e: unknown) => e instanceof NydusError && e.code === 'ERR_CONFIG_INVALID');
  // The kernel's limits: NAME_MAX bytes a component (multi-byte characters count in bytes), PATH_MAX a path.
  assert.equal(normalizeMountpoint(`/${'a'.repeat(255)}/b`), `/${'a'.repeat(255)}/b`);
  assert.throws(() => normalizeMountpoint(`/x/${'a'.repeat(256)}`), /a component is longer than 255 bytes/);
  assert.throws(() => normalizeMountpoint(`/${'é'.repeat(128)}`), /a component is longer than 255 bytes/);
  assert.throws(() => normalizeMountpoint(`/${'a/'.repeat(2048)}`), /longer than 4095 bytes/);
});

test('an image at / is the FUSE root: node 1, children at index * 2^32 + ino', async (t) => {
  const imgs = await images(t);
  if (!imgs) return;
  const fs = new PseudoFs({ uid: 0, gid: 0, startTime: 1 });
  assert.deepEqual(names(fs, ROOT_ID), ['.', '..'], 'an empty pseudo root');
  const index = fs.allocateIndex();
  await fs.attach({ mountpoint: '/', index, fs: imgs.v6.fs });
  const root = fs.getattr(ROOT_ID);
  assert.equal(root.ino, ROOT_ID);
  assert.equal(root.mode, 0o040755);
  const lib = fs.lookup(ROOT_ID, Buffer.from('lib.rs'));
  assert.equal(lib.ino, index * INDEX_SPAN + imgs.v6.fs.sb.lookup(imgs.v6.fs.rootIno, Buffer.from('lib.rs'))!);
  assert.equal(fs.getattr(lib.ino).size, 16931);
  assert.equal((await fs.read(lib.ino, 0, 0, 5)).length, 5);
  assert.deepEqual(names(fs, ROOT_ID), ['.', '..', 'lib.rs', 'sync_io.rs']);
  assert.equal(errnoOf(() => fs.lookup(ROOT_ID, Buffer.from('nope'))), ENOENT);
  assert.equal(fs.mountOfNode(lib.ino)?.index, index);
  assert.equal(fs.mountOfNode(ROOT_ID)?.index, index);
});

test('images at sub-paths sit under pseudo directories with path-hashed ids', async (t) => {
  const imgs = await images(t);
  if (!imgs) return;
  const fs = new PseudoFs({ uid: 7, gid: 8, startTime: 1 });
  const n = new RecordingNotifier();
  fs.setNotifier(n);
  const i5 = fs.allocateIndex();
  const i6 = fs.allocateIndex();
  await fs.attach({ mountpoint: '/a/b', index: i5, fs: imgs.v5.fs });
  await fs.attach({ mountpoint: '/c', index: i6, fs: imgs.v6.fs });
  assert.deepEqual(names(fs, ROOT_ID), ['.', '..', 'a', 'c']);
  const a = fs.lookup(ROOT_ID, Buffer.from('a'));
  assert.equal(a.ino, pseudoDirId('/a'));
  assert.ok(a.ino >= PSEUDO_BASE && a.ino < 2 ** 53);
  assert.deepEqual([a.mode, a.uid, a.gid, a.nlink], [0o040755, 7, 8, 2]);
  const b = fs.lookup(a.ino, Buffer.from('b'));
  assert.equal(b.ino, i5 * INDEX_SPAN + imgs.v5.fs.rootIno, 'the mountpoint is the image root');
  const c = fs.lookup(ROOT_ID, Buffer.from('c'));
  assert.equal(c.ino, i6 * INDEX_SPAN + imgs.v6.fs.rootIno);
  const list = new ListSink(false);
  fs.readdir(b.ino, 0, 0, list);
  assert.deepEqual(list.entries.slice(0, 2).map((e) => [e.name, e.ino]), [['.', b.ino], ['..', a.ino]]);
  assert.deepEqual(names(fs, b.ino).slice(2), ['hardlink-test', 'normal-file-test', 'symlink-test']);
  assert.equal(fs.statfs(a.ino).files, 0);
  assert.equal(fs.statfs(b.ino).files, Number(imgs.v5.fs.sb.superblockJson().inodes_count));
  assert.deepEqual(fs.listxattr(a.ino), []);
  assert.equal(errnoOf(() => fs.getxattr(a.ino, Buffer.from('user.x'))), 61);
  assert.deepEqual(n.calls, [`entry ${pseudoDirId('/a')} b`, `inode ${pseudoDirId('/a')}`, 'entry 1 c', 'inode 1'], 'the name and its directory listing');
});

test('an image at / hides the pseudo tree until it is unmounted; stale ids answer ESTALE', async (t) => {
  const imgs = await images(t);
  if (!imgs) return;
  const fs = new PseudoFs({ uid: 0, gid: 0, startTime: 1 });
  const n = new RecordingNotifier();
  fs.setNotifier(n);
  await fs.attach({ mountpoint: '/snap', index: fs.allocateIndex(), fs: imgs.v5.fs });
  const rootIndex = fs.allocateIndex();
  await fs.attach({ mountpoint: '/', index: rootIndex, fs: imgs.v6.fs });
  assert.deepEqual(n.calls.slice(2), ['entry 1 snap', 'inode 1'], 'mounting / drops the pseudo names and the root');
  assert.deepEqual(names(fs, ROOT_ID), ['.', '..', 'lib.rs', 'sync_io.rs']);
  assert.equal(errnoOf(() => fs.lookup(ROOT_ID, Buffer.from('snap'))), ENOENT, 'hidden, as upstream');
  const lib = fs.lookup(ROOT_ID, Buffer.from('lib.rs')).ino;
  n.calls.length = 0;
  const { invalidated } = fs.detach('/');
  await invalidated;
  assert.deepEqual(n.calls, ['entry 1 snap', 'entry 1 lib.rs', 'entry 1 sync_io.rs', 'inode 1']);
  assert.deepEqual(names(fs, ROOT_ID), ['.', '..', 'snap']);
  assert.equal(errnoOf(() => fs.getattr(lib)), ESTALE);
  assert.equal(errnoOf(() => fs.read(lib, 0, 0, 1)), ESTALE);
});

test('umount prunes pseudo dirs; remount takes a fresh index; errors for existing and missing mounts', async (t) => {
  const imgs = await images(t);
  if (!imgs) return;
  const fs = new PseudoFs({ uid: 0, gid: 0, startTime: 1 });
  const n = new RecordingNotifier();
  fs.setNotifier(n);
  const m1: ImageMount = { mountpoint: '/x/y/z', index: fs.allocateIndex(), fs: imgs.v5.fs };
  await fs.attach(m1);
  assert.throws(() => fs.attach({ ...m1, index: fs.allocateIndex() }), (e: unknown) => (e as NydusError).code === 'ERR_DAEMON_MOUNT_EXISTS');
  const old = fs.lookup(fs.lookup(fs.lookup(ROOT_ID, Buffer.from('x')).ino, Buffer.from('y')).ino, Buffer.from('z')).ino;
  const m2: ImageMount = { mountpoint: '/x/y/z', index: fs.allocateIndex(), fs: imgs.v6.fs };
  const r = fs.replace(m2);
  await r.invalidated;
  assert.equal(r.old, m1);
  assert.equal(errnoOf(() => fs.getattr(old)), ESTALE, 'old node ids die with the old image');
  assert.notEqual(fs.lookup(pseudoDirId('/x/y'), Buffer.from('z')).ino, old);
  n.calls.length = 0;
  await fs.detach('/x/y/z').invalidated;
  assert.deepEqual(n.calls, ['entry 1 x', 'inode 1'], 'the topmost pruned directory is invalidated');
  assert.deepEqual(names(fs, ROOT_ID), ['.', '..']);
  assert.equal(errnoOf(() => fs.getattr(pseudoDirId('/x'))), ESTALE);
  assert.throws(() => fs.detach('/x/y/z'), (e: unknown) => (e as NydusError).code === 'ERR_DAEMON_MOUNT_NOT_FOUND');
});

test('300 mount/umount cycles: indexes and node ids never repeat; the next index survives a restart', async (t) => {
  const imgs = await images(t);
  if (!imgs) return;
  const fs = new PseudoFs({ uid: 0, gid: 0, startTime: 1 });
  const seen = new Set<number>();
  await fs.attach({ mountpoint: '/keep', index: fs.allocateIndex(), fs: imgs.v6.fs });
  for (let i = 0; i < 300; i++) {
    const path = `/pseudo_fs_${i % 7}`;
    await fs.attach({ mountpoint: path, index: fs.allocateIndex(), fs: imgs.v5.fs });
    const node = fs.lookup(ROOT_ID, Buffer.from(path.slice(1))).ino;
    const child = fs.lookup(node, Buffer.from('symlink-test')).ino;
    assert.ok(!seen.has(node) && !seen.has(child), `cycle ${i} reused a node id`);
    seen.add(node);
    seen.add(child);
    await fs.detach(path).invalidated;
  }
  assert.equal(fs.nextIndex, 302);
  const successor = new PseudoFs({ uid: 0, gid: 0, startTime: 1 });
  successor.nextIndex = fs.nextIndex;
  assert.equal(successor.allocateIndex(), 302);
  successor.nextIndex = MAX_INDEX;
  assert.equal(successor.allocateIndex(), MAX_INDEX);
  assert.equal(successor.allocateIndex(), 1, 'wraps after a million mounts');
});
