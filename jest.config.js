// One jest project per kind of test, so each kind runs on its own (`npm run test:unit`,
// ...) and only the kinds that need a dev server start one.
/** @param {string} name @param {string | undefined} globalSetup */
const project = (name, globalSetup) => ({
  displayName: name,
  testEnvironment: 'node',
  roots: [`<rootDir>/test/${name}`],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'test/tsconfig.json' }] },
  // Every kind needs lib/ (some tests run the compiled scripts); test/setup/build.ts compiles
  // it if a source changed. The server kinds also start one dev server for the run.
  globalSetup: `<rootDir>/test/setup/${globalSetup}`,
  globalTeardown: globalSetup === 'global-setup.ts' ? '<rootDir>/test/setup/global-teardown.ts' : undefined,
});

/** @type {import('jest').Config} */
module.exports = {
  testTimeout: 30_000,
  projects: [
    project('unit', 'build.ts'),
    project('workflow', 'global-setup.ts'),
    project('e2e', 'global-setup.ts'),
    // The long chaos and property runs, apart from npm test's quick loop; CI runs them at full size.
    project('chaos', 'global-setup.ts'),
    project('ui', 'global-setup.ts'),
    // Starts its own Temporal cluster on PostgreSQL (tools/cluster/cluster.ts), not the dev server.
    project('cluster', 'build.ts'),
    // Hosts as network namespaces, cut off and healed: needs root (test/support/hosts.ts).
    project('partitions', 'build.ts'),
  ],
};
