// Debian's nginx run by the tests on loopback, in two roles: a caching registry mirror
// (blob ranges cached per 1 MiB slice with the slice module, everything else passed to
// the registry) and a forward HTTP proxy standing in for a Dragonfly peer (absolute-form
// requests forwarded to their host, plus a /ping health endpoint). Its access log
// records each request with the mirror header the backend sends and the cache status,
// so tests can count what went through it. stop()/start() simulate an outage.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Owner } from './registry-server.js';
import { freePort, restartable, waitForHttp } from './registry-server.js';

export const NGINX_BIN = '/usr/sbin/nginx';

export function haveNginx(): boolean {
  return existsSync(NGINX_BIN);
}

/** One access-log line. */
export interface NginxHit {
  method: string;
  uri: string;
  status: number;
  range: string;
  cache: string;
  mirrorHeader: string;
}

export interface Nginx {
  host: string;
  port: number;
  url: string;
  hits(): NginxHit[];
  stop(): Promise<void>;
  start(): Promise<void>;
}

function common(prefix: string): string {
  return `
worker_processes 1;
user root root;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 512; }
http {
  log_format t '$request_method|$uri|$status|$http_range|$upstream_cache_status|$http_x_nydus_mirror';
  access_log ${prefix}/access.log t;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  proxy_http_version 1.1;
  proxy_buffering on;
`;
}

function mirrorConf(prefix: string, port: number, registryPort: number): string {
  return `${common(prefix)}
  proxy_cache_path ${prefix}/cache levels=1:2 keys_zone=blobs:10m max_size=2g inactive=1h use_temp_path=off;
  upstream registry { server 127.0.0.1:${registryPort}; keepalive 16; }
  server {
    listen 127.0.0.1:${port};
    location ~ ^/v2/.+/blobs/sha256: {
      slice 1m;
      proxy_cache blobs;
      proxy_cache_key $uri$slice_range;
      proxy_set_header Range $slice_range;
      proxy_set_header Connection "";
      proxy_cache_valid 200 206 1h;
      proxy_pass http://registry;
    }
    location / {
      proxy_set_header Connection "";
      proxy_pass http://registry;
    }
  }
}
`;
}

function forwardProxyConf(prefix: string, port: number): string {
  return `${common(prefix)}
  server {
    listen 127.0.0.1:${port};
    location = /ping { return 200 "pong"; }
    location / {
      proxy_set_header Connection "";
      proxy_pass http://$http_host$request_uri;
    }
  }
}
`;
}

function staticConf(prefix: string, port: number, dir: string, socket: string | undefined): string {
  return `${common(prefix)}
  server {
    listen ${socket === undefined ? `127.0.0.1:${port}` : `unix:${socket}`};
    location /blobs/ { alias ${dir}/; }
  }
}
`;
}

function tlsConf(prefix: string, port: number, tlsPort: number, registryPort: number, cert: string, key: string): string {
  return `${common(prefix)}
  server {
    listen 127.0.0.1:${port};
    location / { return 200 "ok"; }
  }
  server {
    listen 127.0.0.1:${tlsPort} ssl;
    ssl_certificate ${cert};
    ssl_certificate_key ${key};
    location / {
      proxy_set_header Host $http_host;
      proxy_set_header Connection "";
      proxy_pass http://127.0.0.1:${registryPort};
    }
  }
}
`;
}

async function startNginx(t: Owner, conf: (prefix: string, port: number) => string, readyUrl?: (port: number) => string): Promise<Nginx> {
  const prefix = mkdtempSync('/tmp/registry-nginx-');
  mkdirSync(join(prefix, 'tmp'));
  mkdirSync(join(prefix, 'cache'));
  const port = await freePort();
  const confPath = join(prefix, 'nginx.conf');
  writeFileSync(confPath, conf(prefix, port));
  const url = `http://127.0.0.1:${port}`;
  const proc = restartable(
    () => spawn(NGINX_BIN, ['-p', prefix, '-c', confPath, '-e', join(prefix, 'error.log'), '-g', 'daemon off;'], { stdio: 'ignore' }),
    () => waitForHttp(readyUrl?.(port) ?? `${url}/`),
  );
  const nginx: Nginx = {
    host: `127.0.0.1:${port}`,
    port,
    url,
    hits() {
      const log = join(prefix, 'access.log');
      if (!existsSync(log)) return [];
      return readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => {
          const [method, uri, status, range, cache, mirrorHeader] = l.split('|');
          return { method, uri, status: Number(status), range, cache, mirrorHeader };
        });
    },
    start: proc.start,
    stop: proc.stop,
  };
  t.after(async () => {
    await nginx.stop();
    rmSync(prefix, { recursive: true, force: true });
  });
  await nginx.start();
  return nginx;
}

/** nginx as a caching mirror of the registry on `registryPort`. */
export function startMirror(t: Owner, registryPort: number): Promise<Nginx> {
  return startNginx(t, (prefix, port) => mirrorConf(prefix, port, registryPort));
}

/**
 * nginx serving the files of `dir` at `/blobs/<name>` (HEAD and byte ranges), on a
 * loopback port or, with `socket`, on that unix socket only.
 */
export function startStaticServer(t: Owner, dir: string, socket?: string): Promise<Nginx> {
  return startNginx(
    t,
    (prefix, port) => staticConf(prefix, port, dir, socket),
    socket === undefined ? undefined : () => `unix:${socket}`,
  );
}

/** nginx as a forward proxy (a Dragonfly peer stand-in) with GET /ping. */
export function startForwardProxy(t: Owner): Promise<Nginx> {
  return startNginx(t, forwardProxyConf);
}

/**
 * nginx terminating TLS (certificate `cert`, key `key`) in front of the registry on
 * `registryPort`; `tlsHost` is its https address (the plain `port` only answers readiness).
 */
export async function startTlsProxy(t: Owner, registryPort: number, cert: string, key: string): Promise<Nginx & { tlsHost: string }> {
  const tlsPort = await freePort();
  const nginx = await startNginx(t, (prefix, port) => tlsConf(prefix, port, tlsPort, registryPort, cert, key));
  return { ...nginx, tlsHost: `127.0.0.1:${tlsPort}` };
}
