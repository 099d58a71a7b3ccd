// The conformance suite, written once (go-fuse posixtest style): name ->
// fn(context) against a real mount of the MemoryFs test tree, run on every
// transport. Every expectation is computed from the MemoryFs the mount
// serves; Caps describe what a transport cannot carry (fuse-native: ms times,
// 32-bit inode numbers, no lseek). The mount is touched only from children.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { MemoryFs, MemoryNode } from '../helpers/memory-fs.js';
import { S_IFMT, S_IFREG } from '../../src/fuse/filesystem.js';
import { nodeEval, run, runOk, sh } from './child.js';

/** What a transport can represent. */
export interface Caps {
  nsecTimes: boolean;
  ino64: boolean;
  lseek: boolean;
}

export interface ConformanceContext {
  mnt: string;
  fs: MemoryFs;
  caps: Caps;
}

export type ConformanceTest = (c: ConformanceContext) => Promise<void>;

const GiB = 2 ** 30;

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function expectedIno(n: MemoryNode, caps: Caps): number {
  return caps.ino64 ? n.ino : n.ino % 2 ** 32;
}

function expectedNsec(n: MemoryNode, caps: Caps): number {
  return caps.nsecTimes ? n.mtimeNsec : Math.floor(n.mtimeNsec / 1e6) * 1e6;
}

// pread()s "offset:length" ranges in a child and prints "<n>:<sha256>" per range.
const PREAD = `
const fs = require('fs'), crypto = require('crypto');
const [file, ...specs] = process.argv.slice(1);
const fd = fs.openSync(file, 'r');
console.log(JSON.stringify(specs.map((s) => {
  const [off, len] = s.split(':').map(Number);
  const b = Buffer.alloc(len);
  let n = 0;
  for (;;) { const k = fs.readSync(fd, b, n, len - n, off + n); if (k === 0) break; n += k; if (n === len) break; }
  return n + ':' + crypto.createHash('sha256').update(b.subarray(0, n)).digest('hex');
})));`;

export const posixSuite: Record<string, ConformanceTest> = {
  async 'find lists every path of the tree'({ mnt, fs }) {
    const out = await runOk('find', ['.', '-mindepth', '1', '-printf', '%P\\n'], mnt);
    assert.deepEqual(out.trim().split('\n').sort(), fs.allPaths().sort());
  },

  async 'stat reports ino, mode, nlink, uid/gid, size, blocks, rdev and mtime'({ mnt, fs, caps }) {
    const paths = ['.', 'hello.txt', 'data.bin', 'sparse.img', 'link', 'dangling', 'hard-a', 'dir/hard-b', 'fifo', 'null', 'dir', 'dir/sub/deep.txt', 'big-ino.txt'];
    const out = await runOk('stat', ['-c', '%i|%f|%h|%u|%g|%s|%b|%t:%T|%.9Y', ...paths], mnt);
    const lines = out.trim().split('\n');
    paths.forEach((p, i) => {
      const n = fs.resolve(p === '.' ? '' : p);
      const a = fs.attrOf(n);
      const [ino, mode, nlink, uid, gid, size, blocks, dev, mtime] = lines[i].split('|');
      assert.equal(Number(ino), expectedIno(n, caps), `${p} ino`);
      assert.equal(parseInt(mode, 16), n.mode, `${p} mode`);
      assert.equal(Number(nlink), n.nlink, `${p} nlink`);
      assert.deepEqual([Number(uid), Number(gid)], [n.uid, n.gid], `${p} uid/gid`);
      assert.equal(Number(size), n.size, `${p} size`);
      assert.equal(Number(blocks), a.blocks, `${p} blocks`);
      assert.equal(dev, `${(n.rdev >> 8).toString(16)}:${(n.rdev & 0xff).toString(16)}`, `${p} rdev`);
      assert.equal(mtime, `${n.mtime}.${String(expectedNsec(n, caps)).padStart(9, '0')}`, `${p} mtime`);
    });
  },

  async 'hard links share one inode'({ mnt }) {
    const out = await runOk('stat', ['-c', '%i %h', 'hard-a', 'dir/hard-b'], mnt);
    const [a, b] = out.trim().split('\n');
    assert.equal(a, b);
    assert.match(a, / 2$/);
  },

  async 'cat returns the exact bytes'({ mnt, fs }) {
    for (const p of ['hello.txt', 'dir/sub/deep.txt', 'big-ino.txt', 'hard-a']) {
      const r = await run('cat', [p], { cwd: mnt });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout, fs.contentOf(p), p);
    }
    const sum = await runOk('sha256sum', ['data.bin'], mnt);
    assert.equal(sum.split(' ')[0], sha256(fs.contentOf('data.bin')));
  },

  async 'readlink returns symlink targets, dangling ones included'({ mnt, fs }) {
    const out = await runOk('readlink', ['link', 'dangling'], mnt);
    assert.deepEqual(out.trim().split('\n'), [fs.resolve('link').target!.toString(), fs.resolve('dangling').target!.toString()]);
    const follow = await run('cat', ['link'], { cwd: mnt });
    assert.deepEqual(follow.stdout, fs.contentOf('hello.txt'));
    const broken = await run('cat', ['dangling'], { cwd: mnt });
    assert.notEqual(broken.code, 0);
  },

  async 'getfattr -d -m - lists every xattr with its value'({ mnt, fs }) {
    const out = await runOk('getfattr', ['--absolute-names', '-d', '-m', '-', '-e', 'hex', join(mnt, 'hello.txt')], mnt);
    const got = new Map(
      out.split('\n').filter((l) => l.includes('=')).map((l) => {
        const eq = l.indexOf('=');
        return [l.slice(0, eq), l.slice(eq + 1)] as const;
      }),
    );
    const want = new Map([...fs.resolve('hello.txt').xattrs].map(([k, v]) => [k, `0x${v.toString('hex')}`] as const));
    assert.deepEqual(new Map([...got].sort()), new Map([...want].sort()));
    const none = await run('getfattr', ['-n', 'user.none', 'hello.txt'], { cwd: mnt });
    assert.match(none.stderr, /No such attribute/);
  },

  async 'reads across page, request and 4 GiB boundaries, and past EOF'({ mnt, fs }) {
    const data = fs.resolve('data.bin').size;
    const sparse = fs.resolve('sparse.img').size;
    const cases: [string, number, number][] = [
      ['data.bin', 0, 100],
      ['data.bin', 4000, 200],
      ['data.bin', 131_000, 1000],
      ['data.bin', 1_048_570, 8192],
      ['data.bin', data - 10, 100],
      ['data.bin', data + 5, 10],
      ['data.bin', 0, data],
      ['sparse.img', 0, 8192],
      ['sparse.img', 2 * GiB, 4096],
      ['sparse.img', 4 * GiB - 4096, 8192],
      ['sparse.img', 4 * GiB - 1, 2],
      ['sparse.img', sparse - 20, 100],
      ['sparse.img', sparse, 10],
    ];
    for (const file of ['data.bin', 'sparse.img']) {
      const mine = cases.filter((c) => c[0] === file);
      const r = await nodeEval(PREAD, [join(mnt, file), ...mine.map(([, o, l]) => `${o}:${l}`)]);
      assert.equal(r.code, 0, r.stderr);
      const got = JSON.parse(r.stdout.toString()) as string[];
      mine.forEach(([, o, l], i) => {
        const want = fs.contentRange(file, o, l);
        assert.equal(got[i], `${want.length}:${sha256(want)}`, `${file} ${o}+${l}`);
      });
    }
  },

  async 'lseek SEEK_DATA/SEEK_HOLE'({ mnt, fs, caps }) {
    const py = `import os,sys,json
fd=os.open(sys.argv[1],os.O_RDONLY)
out=[]
for w,o in [(os.SEEK_HOLE,0),(os.SEEK_DATA,5000),(os.SEEK_HOLE,${4 * GiB}),(os.SEEK_DATA,${5 * GiB - 100})]:
    try: out.append(os.lseek(fd,o,w))
    except OSError as e: out.append(-e.errno)
print(json.dumps(out))`;
    const out = JSON.parse(await runOk('python3', ['-c', py, join(mnt, 'sparse.img')])) as number[];
    const n = fs.resolve('sparse.img');
    const [a, b, c] = n.extents;
    if (caps.lseek) {
      assert.deepEqual(out, [a.data.length, b.offset, b.offset + b.data.length, c.offset]);
    } else {
      // Without FUSE_LSEEK the kernel treats the whole file as data.
      assert.deepEqual(out, [n.size, 5000, n.size, 5 * GiB - 100]);
    }
  },

  async '8 concurrent direct readers get identical bytes'({ mnt, fs }) {
    const want = sha256(fs.contentOf('data.bin'));
    const readers = Array.from({ length: 8 }, (_, i) =>
      sh(`dd if=data.bin iflag=direct bs=${(i + 1) * 16}k status=none | sha256sum`, mnt),
    );
    const results = await Promise.all(readers);
    for (const r of results) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.toString().split(' ')[0], want);
    }
  },

  async 'writes, creates, renames, chmod, mkdir, unlink, setxattr fail with EROFS'({ mnt }) {
    const attempts = [
      'touch new-file',
      'mkdir new-dir',
      'rm hello.txt',
      'mv hello.txt moved.txt',
      'chmod 600 hello.txt',
      'ln -s hello.txt new-link',
      'ln hello.txt new-hard',
      'setfattr -n user.x -v 1 hello.txt',
      'setfattr -x user.greeting hello.txt',
      'echo more >> hello.txt',
      'truncate -s 0 hello.txt',
      'rmdir dir/sub',
    ];
    for (const a of attempts) {
      const r = await sh(a, mnt);
      assert.notEqual(r.code, 0, a);
      assert.match(r.stderr, /Read-only file system/, a);
    }
  },

  async 'a 5000-entry directory lists completely, without duplicates'({ mnt, fs }) {
    const out = await runOk('ls', ['-f', 'big-dir'], mnt);
    const names = out.trim().split('\n');
    assert.equal(new Set(names).size, names.length, 'no duplicates');
    assert.deepEqual(names.filter((n) => n !== '.' && n !== '..').sort(), [...fs.resolve('big-dir').children!.keys()].sort());
    const wc = await runOk('sh', ['-c', 'find big-dir -type f | wc -l'], mnt);
    assert.equal(Number(wc.trim()), 5000);
  },

  async 'file types: fifo, char device, symlink, directory'({ mnt, fs }) {
    const out = await runOk('stat', ['-c', '%F', 'fifo', 'null', 'link', 'dir', 'hello.txt'], mnt);
    assert.deepEqual(out.trim().split('\n'), ['fifo', 'character special file', 'symbolic link', 'directory', 'regular file']);
    assert.equal(fs.resolve('hello.txt').mode & S_IFMT, S_IFREG);
  },

  async 'statfs reports the filesystem numbers'({ mnt, fs }) {
    const out = await runOk('stat', ['-f', '-c', '%b %S %l %c', '.'], mnt);
    const s = fs.statfs();
    assert.deepEqual(out.trim().split(' ').map(Number), [s.blocks, s.bsize, s.namelen, s.files]);
  },

  async 'missing names are ENOENT'({ mnt }) {
    const r = await run('stat', ['no-such-file', 'dir/nope'], { cwd: mnt });
    assert.notEqual(r.code, 0);
    assert.equal((r.stderr.match(/No such file or directory/g) ?? []).length, 2);
  },
};
