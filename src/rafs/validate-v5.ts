// RAFS v5 checks below the format-neutral view: every reachable inode record by index
// (hard-link copies included), child ranges that never overlap, parents, sorted names,
// hard-link copies that agree with their first record, and the `i_digest` rules of
// docs/format.md §2 (file: its chunk ids; symlink: its target; dir: its children's digests).
import { digest } from '../storage/digest.js';
import { corrupt, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from './layout/common.js';
import type { RafsV5Super, V5Record } from './reader/v5-super.js';

type Hasher = (parts: readonly Buffer[]) => Buffer;

/** Walks records by index from the root; throws on the first inconsistency. */
export async function validateV5Records(sb: RafsV5Super): Promise<void> {
  const hash: Hasher = (parts) => digest(sb.digester, Buffer.concat(parts));
  const visited = new Uint8Array(sb.indexCount + 1);
  visited[1] = 1;
  const stack = [1];
  while (stack.length > 0) {
    const dir = sb.recordAt(stack.pop() as number);
    const where = `v5 directory index ${dir.index}`;
    const { childIndex, childCount } = dir.inode;
    const childDigests: Buffer[] = [];
    let prevName: Buffer | undefined;
    for (let idx = childIndex; idx < childIndex + childCount; idx++) {
      if (visited[idx]) throw corrupt(`failed to check ${where}: child index ${idx} belongs to another directory`);
      visited[idx] = 1;
      const child = sb.recordAt(idx);
      if (child.inode.parent !== dir.inode.ino) {
        throw corrupt(`failed to check index ${idx}: parent ${child.inode.parent}, expected ${dir.inode.ino}`);
      }
      if (prevName && Buffer.compare(prevName, child.name) >= 0) throw corrupt(`failed to check ${where}: children are not sorted`);
      prevName = child.name;
      if ((child.inode.mode & S_IFMT) === S_IFDIR) {
        if (child.inode.ino !== idx) throw corrupt(`failed to check index ${idx}: directory with ino ${child.inode.ino}`);
        stack.push(idx);
      } else {
        checkLinkCopy(sb, child);
        checkDigest(child, digestInput(sb, child), hash);
      }
      childDigests.push(child.inode.digest);
    }
    checkDigest(dir, childDigests, hash);
  }
}

/** A record whose `i_ino` is not its index is a hard-link copy of record `i_ino`. */
function checkLinkCopy(sb: RafsV5Super, rec: V5Record): void {
  if (rec.inode.ino === rec.index) return;
  const first = sb.recordAt(rec.inode.ino);
  const a = first.inode;
  const b = rec.inode;
  if (rec.inode.ino > rec.index || a.ino !== b.ino || a.mode !== b.mode || a.size !== b.size || a.nlink < 2 || !a.digest.equals(b.digest)) {
    throw corrupt(`failed to check index ${rec.index}: hard link to ino ${b.ino} does not match its first record`);
  }
}

/** The bytes a non-directory record's digest covers. */
function digestInput(sb: RafsV5Super, rec: V5Record): Buffer[] {
  const type = rec.inode.mode & S_IFMT;
  if (type === S_IFLNK) return [sb.symlinkOf(rec)];
  if (type !== S_IFREG) return [];
  // chunksOf applies the per-chunk checks; the digest covers every record in order.
  sb.chunksOf(rec, 0, rec.inode.size);
  const ids: Buffer[] = [];
  for (let k = 0; k < rec.inode.childCount; k++) ids.push(sb.chunkRecord(rec, k).blockId);
  return ids;
}

function checkDigest(rec: V5Record, parts: readonly Buffer[], hash: Hasher): void {
  const want = hash(parts);
  if (!want.equals(rec.inode.digest)) {
    throw corrupt(`failed to check v5 index ${rec.index} (ino ${rec.inode.ino}): i_digest does not match its contents`);
  }
}
