// Image references as docker and containerd write them: `[host[:port]/]repo[:tag][@digest]`.
// The first path component is a registry host when it contains a dot or a colon or is
// `localhost`; otherwise the reference names Docker Hub (`registry-1.docker.io`, with
// `library/` for single-component names). The tag defaults to `latest`. Registries on
// loopback are assumed to speak plain http (as docker treats them as insecure).

import { StorageError } from '../errors.js';

/** A parsed image reference. */
export interface ImageReference {
  /** `name[:port]` of the registry. */
  host: string;
  /** Repository path, e.g. `library/ubuntu`. */
  repo: string;
  /** Tag, when the reference has no digest or has both. */
  tag?: string;
  /** `sha256:<hex>`, when given. */
  digest?: string;
}

const REPO = /^[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const HOST = /^[A-Za-z0-9.-]+(?::[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?$/;

function invalid(ref: string, why: string): StorageError {
  return new StorageError('ERR_STORAGE_MANIFEST', `failed to parse image reference ${JSON.stringify(ref)}: ${why}`);
}

/** Parses `ref`; throws ERR_STORAGE_MANIFEST when it is not a valid reference. */
export function parseReference(ref: string): ImageReference {
  let rest = ref.trim();
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid(ref, `digest ${JSON.stringify(digest)} is not sha256:<64 hex digits>`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(ref, `tag ${JSON.stringify(tag)} is not valid`);
  }
  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  let host: string;
  let repo: string;
  if (first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('['))) {
    host = first;
    repo = rest.slice(slash + 1);
  } else {
    host = 'registry-1.docker.io';
    repo = rest.includes('/') ? rest : `library/${rest}`;
  }
  if (!HOST.test(host)) throw invalid(ref, `registry host ${JSON.stringify(host)} is not valid`);
  if (!REPO.test(repo)) throw invalid(ref, `repository ${JSON.stringify(repo)} is not valid (lower case, digits, separators . _ -)`);
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { host, repo, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** The manifest reference to fetch or push: the digest when given, else the tag. */
export function manifestRef(r: ImageReference): string {
  return r.digest ?? r.tag ?? 'latest';
}

/** `host/repo[:tag][@digest]`. */
export function formatReference(r: ImageReference): string {
  return `${r.host}/${r.repo}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}

/** Whether `host` (`name[:port]`) is a loopback address: such registries default to plain http. */
export function isLoopbackHost(host: string): boolean {
  const name = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return name === 'localhost' || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}
