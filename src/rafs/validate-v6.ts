// RAFS v6 checks below the format-neutral view: every walked directory's "." names
// itself, one EROFS device slot per blob carrying that blob's id and size (what the
// kernel mounts by), and a chunk table whose entries all point at existing blobs.
import { corrupt } from './layout/common.js';
import { EROFS_BLOCK_SIZE } from './layout/v6.js';
import type { RafsV6Super } from './reader/v6-super.js';
import { toChunkInfo } from './reader/shared.js';

/** `dirs`: the directories the generic walk reached. */
export function validateV6Extras(sb: RafsV6Super, dirs: Iterable<number>): void {
  for (const ino of dirs) {
    const self = sb.dir(ino).self;
    if (self !== ino) throw corrupt(`failed to check v6 directory ${ino}: "." names ${self}`);
  }
  const devices = sb.superblock.extraDevices;
  if (devices !== sb.blobs.length) {
    throw corrupt(`failed to check v6 device table: ${devices} slots for ${sb.blobs.length} blobs`);
  }
  for (const b of sb.blobs) {
    const slot = sb.deviceSlot(b.index);
    if (slot.blobId !== (b.recordedBlobId ?? b.blobId) || slot.blocks !== Math.ceil(b.uncompressedSize / EROFS_BLOCK_SIZE)) {
      throw corrupt(`failed to check v6 device slot ${b.index}: ${slot.blobId}/${slot.blocks} blocks vs blob ${b.blobId}`);
    }
  }
  for (let i = 0; i < sb.chunkTableEntries; i++) {
    toChunkInfo(sb.chunkTableEntry(i), 0, sb.blobs, sb.chunkSize, `v6 chunk table entry ${i}`);
  }
}
