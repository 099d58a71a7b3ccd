// Round trips through a real /dev/fuse mount of the in-memory test filesystem, per
// transport: GETATTR (fstat with attr timeout 0), LOOKUP (stat of a path with entry
// timeout 0), 4 KiB direct-I/O READs, each from one client and from two clients at once,
// and a listing of a 5000-entry directory. It measures the transport (decode, dispatch,
// reply, the way requests reach the event loop), not a filesystem. A script, never an
// assertion. Run as root:
//   node --import tsx bench/fuse/roundtrip.bench.ts [--impl fusedev|fuse-native] [--seconds S] [--runs N] [--read-batch N]
import { mkdtempSync, rmdirSync } from 'node:fs';
import { mountTransport, type FuseImpl } from '../../src/fuse/transport.js';
import { run } from '../../test/conformance/child.js';
import { MemoryFs } from '../../test/helpers/memory-fs.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const impl = arg('--impl', 'fusedev') as FuseImpl;
const seconds = Number(arg('--seconds', '3'));
const runs = Number(arg('--runs', '3'));
const readBatch = process.argv.includes('--read-batch') ? Number(arg('--read-batch', '')) : undefined;

// One client loop: `op` repeated in batches of 200 for `seconds`; prints operations per second.
const PY = `import os,sys,time,mmap
kind,path,secs=sys.argv[1],sys.argv[2],float(sys.argv[3])
if kind=='getattr':
    fd=os.open(path,os.O_RDONLY); op=lambda: os.fstat(fd)
elif kind=='lookup':
    op=lambda: os.stat(path)
else:
    fd=os.open(path,os.O_RDONLY|os.O_DIRECT); buf=mmap.mmap(-1,4096)
    op=lambda: os.preadv(fd,[buf],0)
end=time.time()+secs; c=0
while time.time()<end:
    for _ in range(200): op()
    c+=200
print(c/secs)`;

async function rate(kind: string, path: string, clients: number): Promise<number> {
  const outs = await Promise.all(Array.from({ length: clients }, () => run('python3', ['-c', PY, kind, path, String(seconds)])));
  let total = 0;
  for (const r of outs) {
    if (r.code !== 0) throw new Error(`${kind} client failed: ${r.stderr}`);
    total += Number(r.stdout.toString());
  }
  return total;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const dir = mkdtempSync('/tmp/fuse-bench-mnt-');
let served = 0;
const t = await mountTransport(impl, new MemoryFs(), dir, { timeouts: { entry: 0, attr: 0, negative: 0 }, onComplete: () => served++, readBatch });
try {
  const cases: [label: string, kind: string, path: string, clients: number][] = [
    ['GETATTR (fstat), 1 client', 'getattr', `${dir}/hello.txt`, 1],
    ['GETATTR (fstat), 2 clients', 'getattr', `${dir}/hello.txt`, 2],
    ['LOOKUP (stat), 1 client', 'lookup', `${dir}/dir/sub`, 1],
    ['READ 4 KiB direct, 1 client', 'read', `${dir}/data.bin`, 1],
    ['READ 4 KiB direct, 2 clients', 'read', `${dir}/data.bin`, 2],
  ];
  console.log(`${impl}: median of ${runs} runs of ${seconds} s`);
  for (const [label, kind, path, clients] of cases) {
    const xs: number[] = [];
    for (let i = 0; i < runs; i++) xs.push(await rate(kind, path, clients));
    console.log(`${label.padEnd(32)} ${Math.round(median(xs)).toString().padStart(8)} /s   (${xs.map((x) => Math.round(x)).join(', ')})`);
  }
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = await run('sh', ['-c', `for i in 1 2 3 4 5 6 7 8 9 10; do ls -f ${dir}/big-dir >/dev/null; done`]);
    if (r.code !== 0) throw new Error(r.stderr);
    xs.push((performance.now() - t0) / 10);
  }
  console.log(`${'ls -f of 5000 entries'.padEnd(32)} ${median(xs).toFixed(1).padStart(8)} ms  (${xs.map((x) => x.toFixed(1)).join(', ')})`);
} finally {
  await t.unmount();
  rmdirSync(dir);
}
console.log(`requests served: ${served}`);
