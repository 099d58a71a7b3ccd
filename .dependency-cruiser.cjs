// The dependency rules of docs/architecture.md ("Layers"), checked by `npm run depcruise`
// and by test/setup/dependency-rules.test.ts (so `npm test`, and CI, fail on a violation).
// Each layer lists what it may import inside the repo; npm packages and node: builtins are
// not restricted here. Type-only imports count: a type names the module it comes from.

/** A `to.pathNot` for "anything in src/ or machines/ except these". */
function onlyInto(...allowed) {
  return `^(src|machines)/(?!(${allowed.join('|')}))`;
}

const LEAF = ['errors\\.ts', 'util/'];

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Modules form no cycle, type-only imports included.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'errors-is-a-leaf',
      severity: 'error',
      from: { path: '^src/errors\\.ts$' },
      to: { path: onlyInto('errors\\.ts') },
    },
    {
      name: 'util-is-a-leaf',
      severity: 'error',
      comment: 'util holds helpers every layer may use; it uses nothing above errors.',
      from: { path: '^src/util/' },
      to: { path: onlyInto(...LEAF) },
    },
    {
      name: 'config-on-leaves',
      severity: 'error',
      from: { path: '^src/config/' },
      to: { path: onlyInto('config/', ...LEAF) },
    },
    {
      name: 'http-on-leaves',
      severity: 'error',
      comment: 'HTTP client plumbing, token auth: shared by the storage backends and the registry client.',
      from: { path: '^src/http/' },
      to: { path: onlyInto('http/', ...LEAF) },
    },
    {
      name: 'native-on-leaves',
      severity: 'error',
      from: { path: '^src/native/' },
      to: { path: onlyInto('native/', ...LEAF) },
    },
    {
      name: 'fuse-on-native',
      severity: 'error',
      comment: 'fuse declares the FileSystem it serves and knows nothing of images.',
      from: { path: '^src/fuse/' },
      to: { path: onlyInto('fuse/', 'native/', ...LEAF) },
    },
    {
      name: 'storage-below-rafs',
      severity: 'error',
      comment: 'storage owns the chunk and blob types (storage/types.ts); rafs describes images with them.',
      from: { path: '^src/storage/' },
      to: { path: onlyInto('storage/', 'http/', 'config/', ...LEAF) },
    },
    {
      name: 'rafs-on-storage',
      severity: 'error',
      from: { path: '^src/rafs/' },
      to: { path: onlyInto('rafs/', 'storage/', ...LEAF) },
    },
    {
      name: 'registry-client-on-rafs',
      severity: 'error',
      from: { path: '^src/registry/' },
      to: { path: onlyInto('registry/', 'rafs/', 'storage/', 'http/', 'config/', ...LEAF) },
    },
    {
      name: 'fs-on-rafs-and-fuse',
      severity: 'error',
      from: { path: '^src/fs/' },
      to: { path: onlyInto('fs/', 'fuse/', 'rafs/', 'storage/', ...LEAF) },
    },
    {
      name: 'fs-reads-through-the-chunk-reader',
      severity: 'error',
      comment: 'fs reads chunks through the chunk reader, never a backend.',
      from: { path: '^src/fs/' },
      to: { path: '^src/storage/backend/' },
    },
    {
      name: 'tools-on-rafs',
      severity: 'error',
      comment: 'builder and image are offline tools over rafs and storage.',
      from: { path: '^src/(builder|image)/' },
      to: { path: onlyInto('builder/', 'image/', 'rafs/', 'storage/', 'config/', ...LEAF) },
    },
    {
      name: 'builder-and-image-apart',
      severity: 'error',
      from: { path: '^src/image/' },
      to: { path: '^src/builder/' },
    },
    {
      name: 'convert-on-builder-and-registry',
      severity: 'error',
      comment: 'convert joins the builder and the registry client (nydus-image convert); only the CLIs use it.',
      from: { path: '^src/convert/' },
      to: { path: onlyInto('convert/', 'builder/', 'registry/', 'rafs/', 'storage/', 'config/', ...LEAF) },
    },
    {
      name: 'machines-are-pure',
      severity: 'error',
      comment: 'The lifecycle machines import xstate and each other, nothing of src.',
      from: { path: '^machines/' },
      to: { path: '^src/' },
    },
    {
      name: 'daemon-below-api',
      severity: 'error',
      comment: 'The daemon layer knows neither the admin API nor the CLIs nor the build and convert tools.',
      from: { path: '^src/daemon/' },
      to: { path: '^src/(api|cli|builder|image|convert)/|^src/index\\.ts$' },
    },
    {
      name: 'api-through-the-control-contract',
      severity: 'error',
      comment: 'The admin API sees the daemon only through daemon/control.ts (DaemonControl).',
      from: { path: '^src/api/' },
      to: { path: onlyInto('api/', 'daemon/control\\.ts$', 'config/', ...LEAF) },
    },
    {
      name: 'cli-on-top',
      severity: 'error',
      comment: 'Nothing in the library imports the CLIs or the library entry.',
      from: { path: '^(src|machines)/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'entry-on-top',
      severity: 'error',
      from: { path: '^(src|machines)/', pathNot: '^src/index\\.ts$' },
      to: { path: '^src/index\\.ts$' },
    },
  ],
  options: {
    includeOnly: '^(src|machines)/',
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
