// Upstream's request-size buckets (nydus utils metrics.rs `request_size_index`): the
// backend metrics and the filesystem's block-size distribution both count by them.

/** log2 of each bucket's upper bound: 1K, 4K, 16K, 64K, 128K, 512K, 1M. */
const SHIFTS = [10, 12, 14, 16, 17, 19, 20];

/** Size bucket of one request: <1K, <4K, <16K, <64K, <128K, <512K, <1M, ≥1M (0..7). */
export function sizeBucket(size: number): number {
  for (let i = 0; i < SHIFTS.length; i++) if (size < 2 ** SHIFTS[i]) return i;
  return SHIFTS.length;
}
