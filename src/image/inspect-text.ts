// The requests upstream's inspector answers in text rather than JSON: `ls`, `stat NAME`,
// `icheck INODE` and `chunk OFFSET`, laid out as upstream prints them (request mode runs
// at the root directory, so `ls` and `stat` see the root's entries).
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../rafs/layout/common.js';
import type { InodeAttr, RafsSuper } from '../rafs/types.js';
import { walk, type WalkEntry } from '../rafs/walk.js';

/** A name as Rust's `{:?}` shows an OsStr (quoted, escaped). */
const debugName = (name: Buffer | string): string => JSON.stringify(name.toString());

function sign(mode: number): string {
  const t = mode & S_IFMT;
  return t === S_IFREG ? '-' : t === S_IFDIR ? 'd' : t === S_IFLNK ? 'l' : ' ';
}

/** `ls`: one line per entry of the root: type, inode number, name. */
export function listRoot(sb: RafsSuper): string {
  let out = '';
  for (const e of sb.readdir(sb.rootIno)) out += `${sign(sb.getAttr(e.ino).mode)}    ${String(e.ino).padEnd(8)} ${debugName(e.name)}\n`;
  return out;
}

function statText(a: InodeAttr, name: string, parent: number): string {
  return (
    `\nInode Number:       ${a.ino}\nName:               ${debugName(name)}\nSize:               ${a.size}\n` +
    `Parent:             ${parent}\nMode:               0x${a.mode.toString(16).toUpperCase()}\nPermissions:        ${a.mode.toString(8)}\n` +
    `Nlink:              ${a.nlink}\nUID:                ${a.uid}\nGID:                ${a.gid}\nMtime:              ${a.mtime}\n` +
    `MtimeNsec:          ${a.mtimeNsec}\nBlocks:             ${a.blocks}\n`
  );
}

/** `stat NAME` (an entry of the root, or `.` for the root): attributes, then a file's chunks. */
export function statEntry(sb: RafsSuper, name: string): string {
  if (name === '.') return statText(sb.getAttr(sb.rootIno), '/', sb.parentOf(sb.rootIno));
  const ino = sb.lookup(sb.rootIno, Buffer.from(name));
  if (ino === undefined) return '';
  const a = sb.getAttr(ino);
  let out = statText(a, name, sb.rootIno);
  if ((a.mode & S_IFMT) !== S_IFREG) return out;
  out += '  Chunk list:\n';
  sb.fileChunks(ino, 0, a.size).forEach((c, i) => {
    out +=
      `        ${i} ->\n        file offset: ${i * sb.chunkSize}, chunk index: ${c.index}\n` +
      `        compressed size: ${c.compressedSize}, decompressed size: ${c.uncompressedSize}\n` +
      `        compressed offset: ${c.compressedOffset}, decompressed offset: ${c.uncompressedOffset}\n` +
      `        blob id: ${sb.blobs[c.blobIndex]?.blobId ?? ''}\n        chunk id: ${c.digest.toString('hex')}\n    \n`;
  });
  return out;
}

/** `icheck INODE`: every path of the inode, each followed by its attributes. */
export function checkInode(sb: RafsSuper, ino: number): string {
  let out = '';
  for (const e of walk(sb)) {
    if (e.ino !== ino) continue;
    out += `${e.path.toString()}\n` + statText(e.attr, e.depth === 0 ? '/' : e.name.toString(), e.parent);
  }
  return out;
}

function parentPath(e: WalkEntry): string {
  const p = e.path.toString();
  const slash = p.lastIndexOf('/');
  return slash <= 0 ? '/' : p.slice(0, slash);
}

/** `chunk OFFSET`: every file (per name) with a chunk at that compressed offset. */
export function showChunk(sb: RafsSuper, offset: number): string {
  let out = '';
  for (const e of walk(sb)) {
    if ((e.attr.mode & S_IFMT) !== S_IFREG || e.attr.size === 0) continue;
    for (const c of sb.fileChunks(e.ino, 0, e.attr.size)) {
      if (c.compressedOffset !== offset) continue;
      out +=
        `\nFile: ${e.name.toString().padEnd(32)} Parent Path: ${parentPath(e).padEnd(32)}\n` +
        `Compressed Offset: ${c.compressedOffset}, Compressed Size: ${c.compressedSize}\n` +
        `Decompressed Offset: ${c.uncompressedOffset}, Decompressed Size: ${c.uncompressedSize}\n` +
        `Chunk ID: ${c.digest.toString('hex').padEnd(50)}, \nBlob ID: ${sb.blobs[c.blobIndex]?.blobId ?? ''}\n\n`;
    }
  }
  return out;
}
