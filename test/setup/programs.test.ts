// Every external program the suite runs comes from a package that scripts/setup.sh or
// .ci/run installs, or from Debian's required base that every Debian system has. The
// programs are listed in setup.sh (`programs=(...)`, which setup.sh also checks after
// installing); this test finds every program the sources start with a literal name and
// requires it on that list, then finds the package of each listed program with dpkg and
// requires that package to be installed by those scripts (or be a dependency of one) or
// be part of the base.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { need, REPO_ROOT } from '../helpers/env.js';

const SETUP = join(REPO_ROOT, 'scripts', 'setup.sh');
const CI = join(REPO_ROOT, '.ci', 'run');

/** The `programs=(...)` list of setup.sh. */
function listedPrograms(): string[] {
  const m = /^\s*programs=\(([^)]*)\)/m.exec(readFileSync(SETUP, 'utf8'));
  if (!m) throw new Error('scripts/setup.sh has no programs=(...) list');
  return m[1].split(/\s+/).filter((w) => w !== '' && w !== '\\');
}

/** The packages named by the `apt-get install` commands of a script (continuation lines joined). */
function aptInstalled(script: string): string[] {
  const text = readFileSync(script, 'utf8').replace(/\\\n/g, ' ');
  const out: string[] = [];
  for (const m of text.matchAll(/apt-get install ([^\n>|&;]*)/g)) out.push(...m[1].split(/\s+/).filter((w) => /^[a-z0-9][a-z0-9.+-]+$/.test(w)));
  return out;
}

// A call that starts a program named by a string literal, with an argv array after it:
// run('umount', [...]), spawnSync('dot', [...]), promisify(execFile)('prlimit', [...]), and
// the helpers' own spellings; plus the absolute binaries the helpers keep in *_BIN constants.
const CALL = /(?:\b(?:run|runOk|runCommand|spawn|spawnSync|execFile|execFileSync|sh|must)|\))\(\s*'([a-z][a-z0-9._+-]*)',\s*\[/g;
const ARGV = /(?:\[|\],|=>)\s*\[\s*'([a-z][a-z0-9._+-]*)',\s*'-/g;
const BIN = /_BIN = '\/(?:usr\/)?s?bin\/([a-z][a-z0-9._+-]*)'/g;

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.(ts|mjs)$/.test(name)) out.push(p);
  }
  return out;
}

/** Programs the sources start by name, each with the first file that does. */
function programsInSources(): Map<string, string> {
  const own = Object.keys(JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).bin as object);
  const found = new Map<string, string>();
  for (const dir of ['src', 'machines', 'test', 'examples', 'bench', 'scripts']) {
    for (const file of sources(join(REPO_ROOT, dir))) {
      if (file.endsWith('programs.test.ts')) continue;
      const text = readFileSync(file, 'utf8');
      for (const re of [CALL, ARGV, BIN]) {
        for (const m of text.matchAll(re)) if (!own.includes(m[1]) && !found.has(m[1])) found.set(m[1], relative(REPO_ROOT, file));
      }
    }
  }
  return found;
}

// Where Debian's packages put programs. A program is looked up here rather than on PATH,
// which on a developer's machine may put a hand-installed one first (pyenv's python3).
const DEBIAN_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

/** The Debian package that owns `program`, or why there is none. */
function owner(program: string): { pkg: string } | { error: string } {
  const which = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', program], { encoding: 'utf8', env: { PATH: DEBIAN_PATH } });
  const path = which.stdout.trim();
  if (which.status !== 0 || !path.startsWith('/')) return { error: `${program}: not found in ${DEBIAN_PATH}` };
  const real = realpathSync(path);
  // dpkg knows a file under the name its package ships (/bin/x or /usr/bin/x: merged /usr
  // makes both the same file).
  const names = new Set([path, real].flatMap((p) => [p, p.replace(/^\/usr\//, '/'), p.replace(/^\/(s?bin)\//, '/usr/$1/')]));
  for (const name of names) {
    const r = spawnSync('dpkg-query', ['-S', name], { encoding: 'utf8' });
    // "pkg[, pkg2]: /path", after any "diversion by pkg from: /path" lines.
    const line = r.stdout.split('\n').find((l) => l !== '' && !l.startsWith('diversion by '));
    if (r.status === 0 && line !== undefined) return { pkg: line.split(':')[0].split(',')[0].trim() };
  }
  return { error: `${program}: ${path} belongs to no Debian package` };
}

/** Whether Debian's base has `pkg` on every system (Essential, or Priority required). */
function inBase(pkg: string): boolean {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Essential} ${Priority}', pkg], { encoding: 'utf8' });
  return r.status === 0 && /^yes |\brequired$/.test(r.stdout.trim());
}

/** `roots` and every installed package they depend on, directly or not. */
function withDependencies(roots: Iterable<string>): Set<string> {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${db:Status-Abbrev}\t${Package}\t${Pre-Depends}, ${Depends}\n'], { encoding: 'utf8' });
  const deps = new Map<string, string[]>();
  for (const line of r.stdout.split('\n')) {
    const [status, pkg, list] = line.split('\t');
    if (!status.startsWith('ii') || list === undefined) continue;
    // "a (>= 1), b:any | c": every alternative that is installed counts.
    deps.set(pkg, list.split(/[,|]/).map((d) => d.trim().split(/[\s:(]/)[0]).filter((d) => d !== ''));
  }
  const out = new Set<string>();
  const todo = [...roots];
  for (let p = todo.pop(); p !== undefined; p = todo.pop()) {
    if (out.has(p) || !deps.has(p)) continue;
    out.add(p);
    todo.push(...deps.get(p)!);
  }
  return out;
}

/** The problems with `programs` given the packages the scripts install (empty when none). */
function problems(programs: string[], installed: Iterable<string>): string[] {
  const provided = withDependencies(installed);
  const out: string[] = [];
  for (const p of programs) {
    const o = owner(p);
    if ('error' in o) out.push(o.error);
    else if (!provided.has(o.pkg) && !inBase(o.pkg)) out.push(`${p}: from package ${o.pkg}, which neither scripts/setup.sh nor .ci/run installs`);
  }
  return out;
}

const haveDpkg = () => spawnSync('dpkg-query', ['--version']).status === 0;

test('every program the sources start is on the programs list of scripts/setup.sh', () => {
  const listed = new Set(listedPrograms());
  const found = programsInSources();
  assert.ok(found.size > 20, `the scan finds the programs (${[...found.keys()].join(' ')})`);
  const missing = [...found].filter(([p]) => !listed.has(p)).map(([p, file]) => `${p} (${file})`);
  assert.deepEqual(missing, [], 'add these to programs=(...) in scripts/setup.sh, and their package to its apt-get install');
});

test('every listed program comes from a package the CI scripts install, or from the Debian base', (t) => {
  if (!need(t, haveDpkg(), 'needs dpkg (a Debian system, as CI is)')) return;
  const installed = new Set([...aptInstalled(SETUP), ...aptInstalled(CI)]);
  assert.ok(installed.has('graphviz') && installed.has('fuse3'), `parsed the apt-get install lines: ${[...installed].join(' ')}`);
  assert.deepEqual(problems(listedPrograms(), installed), []);
});

test('a program whose package the scripts do not install is reported, and so is one that is not there', (t) => {
  if (!need(t, haveDpkg(), 'needs dpkg (a Debian system, as CI is)')) return;
  assert.ok(existsSync('/usr/bin/dot'), 'Graphviz is installed');
  const installed = new Set([...aptInstalled(SETUP), ...aptInstalled(CI)]);
  installed.delete('graphviz');
  assert.deepEqual(problems(['dot', 'ls'], installed), ['dot: from package graphviz, which neither scripts/setup.sh nor .ci/run installs']);
  assert.deepEqual(problems(['nydus-no-such-program'], installed), ['nydus-no-such-program: not found in /usr/sbin:/usr/bin:/sbin:/bin']);
});
