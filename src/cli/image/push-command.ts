// `nydus-image push`: publishes a built image (bootstrap + data blobs) to an OCI registry
// as a Nydus image that nydusd mounts by reference and nydus-snapshotter recognises.
// Upstream leaves this to nydusify; this project keeps it beside `create`, so a
// directory becomes a registry image with two commands (docs/registry.md).
// Credentials never appear on the command line: IMAGE_PUSH_AUTH or IMAGE_PULL_AUTH
// (base64 `user:password`), or `--username` with the password on stdin. With
// `--target s3://BUCKET[/PREFIX]` the data blobs go to an S3 bucket instead (object-push.ts),
// reached with the s3 backend keys of `--backend-config`. With `--oci-ref` (targz-ref and
// eStargz images) only the small artifact is published, beside the original layers that
// the target repository already holds, as `nydusify convert --oci-ref` does.
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { backendConfigText } from '../../image/open-image.js';
import { isObjectTarget, pushBlobsToS3 } from '../../image/object-push.js';
import { pushImage } from '../../registry/push.js';
import { credentials, parsePlatform, parseRetryLimit, withRegistryFlags, type RegistryFlags } from './registry-flags.js';
import { bootstrapPath, withBootstrap, writeJson, type BootstrapOptions } from './shared.js';

interface PushFlags extends BootstrapOptions, RegistryFlags {
  blobDir?: string;
  target?: string;
  outputJson?: string;
  backendConfig?: string;
  ociRef?: boolean;
}

const usage = (m: string): ConfigError => new ConfigError('ERR_CLI_USAGE', m);

export function registerPush(program: Command): void {
  const cmd = program.command('push').description('Push a RAFS image (bootstrap and data blobs) to an OCI registry as a Nydus image');
  withRegistryFlags(withBootstrap(cmd))
    .option('-D, --blob-dir <dir>', 'directory holding the data blobs, named by blob id')
    .option('-t, --target <reference>', 'target image reference, e.g. localhost:5000/library/app:nydus, or s3://BUCKET[/PREFIX] for the data blobs')
    .option('--backend-config <json|file>', 'with an s3:// target: the s3 backend keys (endpoint, scheme, region, access_key_id, access_key_secret), inline or in a file')
    .option('--oci-ref', 'publish only the artifact of a targz-ref / estargz-ref image; its original layers must already be in the target repository')
    .option('-J, --output-json <file>', 'file path to save the result in JSON format')
    .action(async (positional: string | undefined, flags: PushFlags) => {
      const bootstrap = bootstrapPath(positional, flags);
      if (flags.blobDir === undefined && !flags.ociRef) throw usage('--blob-dir is required');
      if (flags.target === undefined) throw usage('--target is required');
      const retryLimit = parseRetryLimit(flags.retryLimit);
      if (isObjectTarget(flags.target)) {
        if (flags.ociRef || flags.blobDir === undefined) throw usage('--oci-ref applies to a registry target only');
        const r = await pushBlobsToS3({
          bootstrap,
          blobDir: flags.blobDir,
          target: flags.target,
          backendConfig: flags.backendConfig === undefined ? '' : await backendConfigText(flags.backendConfig),
          retryLimit,
          onProgress: (line) => void process.stderr.write(`${line}\n`),
        });
        process.stdout.write(`pushed the data blobs of ${bootstrap} to s3://${r.bucket}/${r.prefix} (${r.uploaded} uploaded, ${r.skipped} already present)\n`);
        if (flags.outputJson) await writeJson(flags.outputJson, { bucket: r.bucket, object_prefix: r.prefix, uploaded: r.uploaded, skipped: r.skipped, uploaded_bytes: r.uploadedBytes });
        return;
      }
      if (flags.backendConfig !== undefined) throw usage('--backend-config applies to an s3:// target only');
      const r = await pushImage({
        bootstrap,
        blobDir: flags.blobDir,
        target: flags.target,
        plainHttp: flags.plainHttp,
        skipVerify: flags.insecure,
        auth: credentials(flags, process.env),
        platform: parsePlatform(flags.platform),
        ociRef: flags.ociRef,
        retryLimit,
        onProgress: (line) => void process.stderr.write(`${line}\n`),
      });
      process.stdout.write(`pushed ${r.reference}@${r.manifestDigest} (${r.uploaded} uploaded, ${r.skipped} already present)\n`);
      if (flags.outputJson) {
        await writeJson(flags.outputJson, {
          reference: r.reference,
          manifest_digest: r.manifestDigest,
          uploaded: r.uploaded,
          skipped: r.skipped,
          uploaded_bytes: r.uploadedBytes,
          manifest: r.manifest,
        });
      }
    });
}
