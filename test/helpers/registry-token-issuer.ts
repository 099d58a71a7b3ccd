// A token issuer for docker-registry's token auth, run by the tests on loopback: it
// answers `GET /token?service=&scope=` (Basic credentials checked against its users,
// anonymous requests get no access unless `anonymousPull`) with a JWT signed RS256 by a
// key whose self-signed certificate (made with the openssl CLI) is the registry's
// `rootcertbundle`; the token carries that certificate in its `x5c` header, which is how
// distribution finds the signing key. Token lifetime is configurable so tests can watch
// expiry and refresh. Counts its requests and remembers the last query.
import { execFileSync } from 'node:child_process';
import { createPrivateKey, randomUUID, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { Owner } from './registry-server.js';

/** A running token issuer. */
export interface TokenIssuer {
  /** The realm URL the registry puts in its challenges. */
  realm: string;
  service: string;
  issuerName: string;
  certPath: string;
  /** Users allowed to authenticate, name → password. */
  users: Record<string, string>;
  /** Seconds a token lives (default 300). */
  expiresIn: number;
  /** Grant `pull` to anonymous requests. */
  anonymousPull: boolean;
  stats: { requests: number; issued: number; refused: number; lastQuery: string; lastToken: string; sawPasswordInQuery: boolean };
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

function jwt(key: KeyObject, certDer: Buffer, claims: Record<string, unknown>): string {
  const head = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] }));
  const body = b64url(JSON.stringify(claims));
  const sig = sign('sha256', Buffer.from(`${head}.${body}`), key);
  return `${head}.${body}.${b64url(sig)}`;
}

/** Starts a token issuer on loopback; closed when the test ends. */
export async function startTokenIssuer(t: Owner, users: Record<string, string>): Promise<TokenIssuer> {
  const dir = mkdtempSync('/tmp/registry-token-');
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-subj', '/CN=nydus-ts-token-issuer', '-days', '2'], {
    stdio: 'ignore',
  });
  const key = createPrivateKey(readFileSync(keyPath));
  const certDer = new X509Certificate(readFileSync(certPath)).raw;
  const issuer: TokenIssuer = {
    realm: '',
    service: 'nydus-ts-test-registry',
    issuerName: 'nydus-ts-test-issuer',
    certPath,
    users,
    expiresIn: 300,
    anonymousPull: false,
    stats: { requests: 0, issued: 0, refused: 0, lastQuery: '', lastToken: '', sawPasswordInQuery: false },
  };
  const server: Server = createServer((req, res) => {
    issuer.stats.requests++;
    const url = new URL(req.url ?? '/', 'http://x');
    issuer.stats.lastQuery = url.search;
    const queryText = decodeURIComponent(url.search);
    if (Object.values(users).some((p) => queryText.includes(p))) issuer.stats.sawPasswordInQuery = true;
    let user = '';
    const authz = req.headers.authorization ?? '';
    if (authz.startsWith('Basic ')) {
      const [name, ...rest] = Buffer.from(authz.slice(6), 'base64').toString('utf8').split(':');
      if (users[name] === undefined || users[name] !== rest.join(':')) {
        issuer.stats.refused++;
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
        return;
      }
      user = name;
    }
    const access = url.searchParams
      .getAll('scope')
      .flatMap((s) => s.split(' '))
      .filter((s) => s !== '')
      .map((scope) => {
        const [type, ...mid] = scope.split(':');
        const actions = mid.pop()!.split(',');
        const granted = user !== '' ? actions : issuer.anonymousPull ? actions.filter((a) => a === 'pull') : [];
        return { type, name: mid.join(':'), actions: granted };
      });
    const now = Math.floor(Date.now() / 1000);
    const token = jwt(key, certDer, {
      iss: issuer.issuerName,
      sub: user,
      aud: url.searchParams.get('service') ?? issuer.service,
      exp: now + issuer.expiresIn,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    });
    issuer.stats.issued++;
    issuer.stats.lastToken = token;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: issuer.expiresIn, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  issuer.realm = `http://127.0.0.1:${port}/token`;
  t.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });
  return issuer;
}
