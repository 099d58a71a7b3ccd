// `nydus-image convert --oci-ref --source REF --target REF`: nydusify's command for
// turning an OCI image in a registry into a Nydus image that reads the original layers
// in place (convert/oci-ref.ts). Flags take nydusify's names where they apply and
// push's registry flags. One line per layer and one for the result on stdout; the
// push's progress on stderr. Only --oci-ref is offered: rewriting layers into RAFS blobs
// is `create` + `push`.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { convertToOciRef, type ConvertedLayer } from '../../convert/oci-ref.js';
import { credentials, parsePlatform, parseRetryLimit, withRegistryFlags, type RegistryFlags } from './registry-flags.js';
import { removeOutputsOnSignal, writeJson } from './shared.js';

interface ConvertFlags extends RegistryFlags {
  source?: string;
  target?: string;
  ociRef?: boolean;
  sourceInsecure?: boolean;
  targetInsecure?: boolean;
  workDir?: string;
  outputJson?: string;
}

const usage = (m: string): ConfigError => new ConfigError('ERR_CLI_USAGE', m);

function layerLine(l: ConvertedLayer): string {
  const how = l.kind === 'estargz' ? `${l.fetched} read by range (footer and TOC)` : 'downloaded and indexed';
  const meta = l.kind === 'targz-ref' ? `, meta blob ${l.metaBlobSize} bytes` : '';
  return `layer ${l.index}/${l.count} ${l.digest} ${l.kind}: ${l.size} bytes, ${how}; bootstrap ${l.bootstrapSize} bytes${meta}`;
}

export function registerConvert(program: Command): void {
  const cmd = program
    .command('convert')
    .description('Convert an OCI image in a registry into a Nydus image that reads its gzip and eStargz layers in place (as nydusify convert --oci-ref)')
    .option('--source <reference>', 'the OCI image, e.g. localhost:5000/library/app:latest')
    .option('--target <reference>', 'the Nydus image to publish: a tag in the repository that holds the source layers, e.g. localhost:5000/library/app:nydus')
    .option('--oci-ref', 'reference the original layers instead of converting them (required: the only mode)')
    .option('--source-insecure', "accept any TLS certificate of the source's registry")
    .option('--target-insecure', "accept any TLS certificate of the target's registry");
  withRegistryFlags(cmd)
    .option('--work-dir <dir>', 'where gzip layers are downloaded and indexed (default: the system temp dir); emptied when done')
    .option('-J, --output-json <file>', 'file path to save the result in JSON format')
    .action(async (flags: ConvertFlags) => {
      if (flags.source === undefined) throw usage('--source is required');
      if (flags.target === undefined) throw usage('--target is required');
      if (!flags.ociRef) throw usage('convert needs --oci-ref: only referencing the original layers is supported (to rewrite them into RAFS blobs, use create and push)');
      const retryLimit = parseRetryLimit(flags.retryLimit);
      const platform = parsePlatform(flags.platform);
      const auth = credentials(flags, process.env);
      const parent = flags.workDir ?? tmpdir();
      mkdirSync(parent, { recursive: true });
      const workDir = mkdtempSync(join(parent, 'nydus-convert-'));
      // A file the thread pool is creating as the signal lands makes the first rmdir fail: retried.
      removeOutputsOnSignal(() => rmSync(workDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 }));
      const r = await convertToOciRef({
        source: flags.source,
        target: flags.target,
        plainHttp: flags.plainHttp,
        skipVerify: flags.insecure,
        sourceSkipVerify: flags.sourceInsecure,
        targetSkipVerify: flags.targetInsecure,
        auth,
        platform,
        retryLimit,
        workDir,
        onLayer: (l) => void process.stdout.write(`${layerLine(l)}\n`),
        onProgress: (line) => void process.stderr.write(`${line}\n`),
      });
      const layerBytes = r.layers.reduce((n, l) => n + l.size, 0);
      process.stdout.write(
        `pushed ${r.push.reference}@${r.push.manifestDigest} from ${r.source}@${r.sourceManifestDigest} (artifact ${r.artifactSize} bytes beside ${layerBytes} bytes of original layers)\n`,
      );
      if (flags.outputJson) {
        await writeJson(flags.outputJson, {
          source: r.source,
          source_manifest_digest: r.sourceManifestDigest,
          reference: r.push.reference,
          manifest_digest: r.push.manifestDigest,
          artifact_size: r.artifactSize,
          layers: r.layers.map((l) => ({
            digest: l.digest,
            media_type: l.mediaType,
            kind: l.kind,
            size: l.size,
            fetched: l.fetched,
            bootstrap_size: l.bootstrapSize,
            meta_blob_size: l.metaBlobSize,
          })),
          uploaded: r.push.uploaded,
          skipped: r.push.skipped,
          uploaded_bytes: r.push.uploadedBytes,
        });
      }
    });
}
