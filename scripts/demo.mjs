#!/usr/bin/env node
// The README's main job: build a sample image with `nydus-image create`, serve it with
// `nydusd` on the localfs backend (with a blobcache), wait for RUNNING through the admin
// API, then read it back through the kernel mount and compare every file with the
// source. The daemon is left running so the mount can be explored; `--stop` ends it.
//   node scripts/demo.mjs [--dir /tmp/nydus-demo] [--stop]
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, symlinkSync, linkSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { dir: { type: 'string', default: '/tmp/nydus-demo' }, stop: { type: 'boolean', default: false } } });
const root = join(import.meta.dirname, '..');
const bin = (name) => join(root, 'dist', 'src', 'cli', `${name}.js`);
const dir = values.dir;
const [src, blobs, cache, mnt, sock] = ['source', 'blobs', 'cache', 'mnt', 'api.sock'].map((p) => join(dir, p));
const pidFile = join(dir, 'nydusd.pid');
const run = (name, args) => execFileSync(process.execPath, [bin(name), ...args], { encoding: 'utf8' });
const step = (s) => console.log(`\n== ${s}`);

function stop() {
  if (!existsSync(pidFile)) return false;
  const pid = Number(readFileSync(pidFile, 'utf8'));
  try {
    process.kill(pid, 'SIGTERM'); // nydusd unmounts and exits 0 on SIGTERM
  } catch {
    /* already gone */
  }
  for (let i = 0; i < 100 && isMounted(); i++) execFileSync('sleep', ['0.1']);
  rmSync(pidFile, { force: true });
  return true;
}

function isMounted() {
  return readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === mnt);
}

if (!existsSync(bin('nydusd'))) {
  console.error('demo: the programs are not built; run ./scripts/setup.sh first');
  process.exit(1);
}
if (values.stop) {
  console.log(stop() ? `stopped nydusd and unmounted ${mnt}` : 'no demo daemon running');
  process.exit(0);
}
if (process.getuid?.() !== 0) {
  console.error('demo: mounting with FUSE needs root (sudo npm run demo)');
  process.exit(1);
}

stop();
rmSync(dir, { recursive: true, force: true });
for (const d of [src, blobs, cache, mnt]) mkdirSync(d, { recursive: true });

step(`sample tree in ${src}`);
mkdirSync(join(src, 'etc/app'), { recursive: true });
mkdirSync(join(src, 'usr/share/doc'), { recursive: true });
writeFileSync(join(src, 'etc/app/config.json'), JSON.stringify({ name: 'demo', replicas: 3 }, null, 2) + '\n');
writeFileSync(join(src, 'usr/share/doc/README'), 'Served lazily, chunk by chunk, from a RAFS image.\n'.repeat(200));
const big = Buffer.alloc(3 << 20);
for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
writeFileSync(join(src, 'usr/share/data.bin'), big);
linkSync(join(src, 'usr/share/data.bin'), join(src, 'usr/share/data-hardlink.bin'));
symlinkSync('../usr/share/doc/README', join(src, 'etc/README'));
console.log(execFileSync('find', [src, '-printf', '%y %M %s %P\n'], { encoding: 'utf8' }).trim());

step('nydus-image create (RAFS v6, zstd, blake3)');
console.log(run('nydus-image', ['create', src, '--bootstrap', join(dir, 'image.boot'), '--blob-dir', blobs]).trim());

step('nydus-image check');
console.log(run('nydus-image', ['check', join(dir, 'image.boot'), '--blob-dir', blobs]).trim());

step(`nydusd serving ${mnt} (localfs backend, blobcache in ${cache})`);
const config = {
  device: { backend: { type: 'localfs', config: { dir: blobs } }, cache: { type: 'blobcache', config: { work_dir: cache } } },
  mode: 'direct',
  digest_validate: true,
  enable_xattr: true,
};
writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
const log = openSync(join(dir, 'nydusd.log'), 'a');
const daemon = spawn(
  process.execPath,
  [bin('nydusd'), '--bootstrap', join(dir, 'image.boot'), '--config', join(dir, 'config.json'), '--mountpoint', mnt,
    '--apisock', sock, '--state-dir', join(dir, 'state'), '--log-level', 'info'],
  { detached: true, stdio: ['ignore', log, log] },
);
writeFileSync(pidFile, String(daemon.pid));
daemon.unref();
for (let i = 0; i < 100 && !existsSync(sock); i++) execFileSync('sleep', ['0.1']);
if (!existsSync(sock)) {
  console.error(`demo: nydusd did not come up; see ${join(dir, 'nydusd.log')}`);
  process.exit(1);
}
console.log(run('nydusctl', ['--sock', sock, 'info']).trim());

step('reading through the mount');
const sha = (p) => createHash('sha256').update(readFileSync(p)).digest('hex');
let files = 0;
const walk = (rel) => {
  for (const name of readdirSync(join(src, rel))) {
    const p = join(rel, name);
    const st = statSync(join(src, p), { throwIfNoEntry: false });
    if (st?.isDirectory()) walk(p);
    else if (st?.isFile()) {
      if (sha(join(src, p)) !== sha(join(mnt, p))) throw new Error(`demo: ${p} differs through the mount`);
      files++;
    }
  }
};
// Read from a child-free path: this process is not the FUSE server, so plain reads are safe.
walk('');
console.log(execFileSync('ls', ['-lR', mnt], { encoding: 'utf8' }).trim());
console.log(`\n${files} files read through ${mnt}: identical to the source`);
console.log(run('nydusctl', ['--sock', sock, 'metrics', '--kind', 'backend']).trim());

step('the daemon keeps serving');
console.log(`  explore:   ls ${mnt}`);
console.log(`  inspect:   node ${bin('nydusctl')} --sock ${sock} info | metrics | events | machine`);
console.log('  stop:      npm run demo -- --stop   (SIGTERM: nydusd unmounts and exits)');
