// The TOC of an eStargz layer read where it lies, in a registry, with two ranged GETs
// and nothing else: the footer (the layer's last bytes: where the TOC member starts),
// then the TOC member itself. The layer is never downloaded. The TOC JSON is checked
// against the layer's `toc.digest` annotation when it has one: nydusd verifies every
// chunk against the digests the TOC gives, so the TOC is what stands for the layer's
// content, and the annotation is what ties it to the manifest (which its own digest,
// the reference, covers). Without the annotation the TOC is taken as the layer has it.
import { createHash } from 'node:crypto';
import { StorageError } from '../errors.js';
import { FOOTER_SIZE, findFooter, parseToc, tocJsonOfMember, tocMemberSpan, type EstargzLayerToc } from '../builder/estargz-toc.js';
import type { DistributionClient } from '../registry/distribution.js';
import type { Descriptor } from '../registry/nydus-manifest.js';
import { ANNOTATION_TOC_DIGEST } from './layer-kind.js';

export type Footer = { tocOffset: number; footerSize: number };

/** The eStargz footer of layer `d`, or undefined when it ends in none (a plain gzip layer). */
export async function readFooter(client: DistributionClient, d: Descriptor, signal?: AbortSignal): Promise<Footer | undefined> {
  const n = Math.min(FOOTER_SIZE, d.size);
  if (n === 0) return undefined;
  return findFooter(await client.fetchRange(d.digest, d.size - n, n, signal));
}

/**
 * Reads the TOC member of eStargz layer `d` that `footer` points at, checks its JSON
 * against `tocDigest` when given, and parses it. `where` names the layer in errors.
 * Answers the TOC and the bytes read.
 */
export async function readRemoteToc(
  client: DistributionClient,
  d: Descriptor,
  footer: Footer,
  tocDigest: string | undefined,
  where: string,
  signal?: AbortSignal,
): Promise<{ toc: EstargzLayerToc; fetched: number }> {
  const span = tocMemberSpan(footer, d.size, where);
  const member = await client.fetchRange(d.digest, span.start, span.end - span.start, signal);
  const json = await tocJsonOfMember(member, where);
  if (tocDigest !== undefined) {
    const got = `sha256:${createHash('sha256').update(json).digest('hex')}`;
    if (got !== tocDigest) {
      throw new StorageError('ERR_STORAGE_DIGEST_MISMATCH', `failed to verify the TOC of ${where}: its digest is ${got}, the manifest's ${ANNOTATION_TOC_DIGEST} annotation says ${tocDigest}`);
    }
  }
  return { toc: { entries: parseToc(json, where), tocOffset: span.start, layerSize: d.size }, fetched: member.length };
}
