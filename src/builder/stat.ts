// `nydus-image stat`: statistics of one or more images and of chunk deduplication across
// them, in upstream's ImageStat shape (base_image / target_image), plus `dedup_info`:
// for a "global dedup threshold" t = 1..20, what moving every chunk shared by at least
// t base images into a common base would store.
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../rafs/layout/common.js';
import { walk } from '../rafs/walk.js';
import { loadImage } from './from-bootstrap.js';

export interface ImageInfo {
  dirs: number;
  files: number;
  symlinks: number;
  chunks: number;
  file_size: number;
  comp_size: number;
  uncomp_size: number;
  padding_size: number;
  /** Chunks the files would have with chunk sizes 2^12 .. 2^20. */
  chunk_sizes: number[];
  /** Files by bit length of their size (0..44). */
  file_sizes: number[];
  dedup_chunks: number;
  dedup_comp_size: number;
  dedup_uncomp_size: number;
  own_chunks: number;
  own_comp_size: number;
  own_uncomp_size: number;
  ref_chunks: number;
  ref_comp_size: number;
  ref_uncomp_size: number;
}

export interface DedupInfo {
  threshold: number;
  raw_chunks: number;
  dedup_chunks: number;
  comp_content_size: number;
  comp_base_size: number;
  comp_image_size: number;
  uncomp_content_size: number;
  uncomp_base_size: number;
  uncomp_image_size: number;
}

export interface ImageStatResult {
  dedup_enabled: boolean;
  target_enabled: boolean;
  base_image: ImageInfo;
  target_image: ImageInfo;
  dedup_info: DedupInfo[];
  /** Bootstraps that were counted as base images. */
  images: string[];
}

function newInfo(): ImageInfo {
  return {
    dirs: 0,
    files: 0,
    symlinks: 0,
    chunks: 0,
    file_size: 0,
    comp_size: 0,
    uncomp_size: 0,
    padding_size: 0,
    chunk_sizes: new Array(9).fill(0),
    file_sizes: new Array(45).fill(0),
    dedup_chunks: 0,
    dedup_comp_size: 0,
    dedup_uncomp_size: 0,
    own_chunks: 0,
    own_comp_size: 0,
    own_uncomp_size: 0,
    ref_chunks: 0,
    ref_comp_size: 0,
    ref_uncomp_size: 0,
  };
}

interface ChunkStat {
  comp: number;
  uncomp: number;
  /** Base images holding the chunk. */
  images: number;
}

/** Collects statistics image by image; `finish` computes the cross-image figures. */
export class ImageStat {
  private readonly base = newInfo();
  private readonly target = newInfo();
  private readonly dict = new Map<string, ChunkStat>();
  private targetSeen = false;
  readonly images: string[] = [];

  /** Adds one image, as a base image or as the target. */
  async add(path: string, isBase: boolean): Promise<void> {
    const { sb } = await loadImage(path, 'bootstrap');
    const info = isBase ? this.base : this.target;
    const seen = new Set<number>();
    const chunks = new Map<string, { comp: number; uncomp: number }>();
    for (const e of walk(sb)) {
      const type = e.attr.mode & S_IFMT;
      if (type === S_IFDIR) info.dirs++;
      else if (type === S_IFLNK) info.symlinks++;
      if (type !== S_IFREG) continue;
      info.files++;
      if (seen.has(e.ino)) continue;
      seen.add(e.ino);
      const size = e.attr.size;
      info.file_sizes[Math.min(size === 0 ? 0 : Math.floor(Math.log2(size)) + 1, 44)]++;
      info.file_size += size;
      info.padding_size += Math.ceil(size / 4096) * 4096 - size;
      for (let bits = 12; bits <= 20; bits++) info.chunk_sizes[bits - 12] += Math.ceil(size / 2 ** bits);
      const list = size > 0 ? sb.fileChunks(e.ino, 0, size) : [];
      info.chunks += list.length;
      for (const c of list) {
        info.comp_size += c.compressedSize;
        info.uncomp_size += c.uncompressedSize;
        chunks.set(c.digest.toString('hex'), { comp: c.compressedSize, uncomp: c.uncompressedSize });
      }
    }
    for (const [key, c] of chunks) {
      const known = this.dict.get(key);
      if (isBase) {
        info.own_chunks++;
        info.own_comp_size += c.comp;
        info.own_uncomp_size += c.uncomp;
        if (known) known.images++;
        else this.dict.set(key, { ...c, images: 1 });
      } else if (known) {
        info.ref_chunks++;
        info.ref_comp_size += c.comp;
        info.ref_uncomp_size += c.uncomp;
      } else {
        info.own_chunks++;
        info.own_comp_size += c.comp;
        info.own_uncomp_size += c.uncomp;
      }
    }
    if (isBase) this.images.push(path);
    else this.targetSeen = true;
  }

  finish(dedup: boolean): ImageStatResult {
    const base = { ...this.base, uncomp_size: this.base.uncomp_size + this.base.padding_size };
    const target = { ...this.target, uncomp_size: this.target.uncomp_size + this.target.padding_size };
    const dedupInfo: DedupInfo[] = [];
    if (dedup) {
      for (let t = 1; t <= 20; t++) {
        const d: DedupInfo = { threshold: t, raw_chunks: 0, dedup_chunks: 0, comp_content_size: 0, comp_base_size: 0, comp_image_size: 0, uncomp_content_size: 0, uncomp_base_size: 0, uncomp_image_size: 0 };
        for (const c of this.dict.values()) {
          d.raw_chunks += c.images;
          d.comp_content_size += c.images * c.comp;
          d.uncomp_content_size += c.images * c.uncomp;
          // Chunks shared by at least t images move to the common base once; the others
          // stay in every image that has them.
          if (c.images >= t) {
            d.dedup_chunks += 1;
            d.comp_base_size += c.comp;
            d.uncomp_base_size += c.uncomp;
          } else {
            d.dedup_chunks += c.images;
            d.comp_image_size += c.images * c.comp;
            d.uncomp_image_size += c.images * c.uncomp;
          }
        }
        dedupInfo.push(d);
      }
      for (const c of this.dict.values()) {
        base.dedup_chunks++;
        base.dedup_comp_size += c.comp;
        base.dedup_uncomp_size += c.uncomp;
      }
    }
    return { dedup_enabled: dedup, target_enabled: this.targetSeen, base_image: base, target_image: target, dedup_info: dedupInfo, images: this.images };
  }
}

/** The text report (upstream's layout). */
export function formatStat(r: ImageStatResult): string {
  const block = (title: string, i: ImageInfo): string =>
    `${title}\nDirectories:            ${i.dirs}\nFiles:                  ${i.files}\nSymlinks:               ${i.symlinks}\n` +
    `Chunks:                 ${i.chunks}\nFile Size:              ${i.file_size}\nPadding Size:           ${i.padding_size}\n` +
    `Uncompressed Size:      ${i.uncomp_size}\nCompressed Size:        ${i.comp_size}\n` +
    `Dedup Chunk Count:      ${i.dedup_chunks}\nDedup Comp Size:        ${i.dedup_comp_size}\nDedup Uncomp Size:      ${i.dedup_uncomp_size}\n` +
    `Owned Chunk Count:      ${i.own_chunks}\nOwned Comp Size:        ${i.own_comp_size}\nOwned Uncomp Size:      ${i.own_uncomp_size}\n` +
    `Referenced Chunk Count: ${i.ref_chunks}\nReferenced Comp Size:   ${i.ref_comp_size}\nReferenced Uncomp Size: ${i.ref_uncomp_size}\n`;
  let out = '';
  if (r.target_enabled) out += block('Target Image Statistics:', r.target_image) + '\n';
  out += block('Base Image Statistics:', r.base_image);
  if (r.dedup_enabled) {
    out += '\nChunk Deduplication Statistics:\nThresh\tRaw Chunks\tDedup Chunks\tComp Content\tComp Base\tComp Image\tUncomp Content\tUncomp Base\tUncomp Image\n';
    for (const d of r.dedup_info) {
      out += `${d.threshold}\t${d.raw_chunks}\t${d.dedup_chunks}\t${d.comp_content_size}\t${d.comp_base_size}\t${d.comp_image_size}\t${d.uncomp_content_size}\t${d.uncomp_base_size}\t${d.uncomp_image_size}\n`;
    }
  }
  return out;
}
