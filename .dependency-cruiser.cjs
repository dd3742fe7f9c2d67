// Enforces the "may import" column of ../shared/ARCHITECTURE.md. `platform/` (config, logging,
// process supervision, tool resolution) and `cli/` (entry points) are the runtime shell around the map.
const folder = (name) => `^${name}/`;
const only = (from, allowed, comment) => ({
  name: `${from}-imports`,
  comment,
  severity: 'error',
  from: { path: folder(from), pathNot: '\\.test\\.ts$' },
  to: {
    path: '^(domain|workflows|activities|planner|policies|datamodel|executor|fleet|db|api|sim|evals|bench|test|cli|platform)/',
    pathNot: [folder(from), ...allowed.map(folder)],
  },
});

module.exports = {
  forbidden: [
    only('domain', [], 'domain/ is pure logic: it imports only domain/'),
    only('datamodel', [], 'datamodel/ stands alone'),
    // Refinements of the map, kept narrow: repositories in db/ use pure domain/ logic (the audit hash
    // chain, identity rules); the policy decision store in policies/ writes through db/.
    only('db', ['domain'], 'db/ may import pure domain/ logic only'),
    only(
      'policies',
      ['platform', 'db'],
      'policies/ may use db/ (decision store) and platform tool resolution',
    ),
    only('fleet', ['db', 'datamodel', 'domain', 'platform'], 'fleet/ may import db/ and datamodel/'),
    only(
      'executor',
      ['datamodel', 'fleet', 'db', 'domain', 'platform'],
      'executor/ may import datamodel/, fleet/, db/',
    ),
    only(
      'planner',
      ['datamodel', 'fleet', 'domain', 'policies', 'platform'],
      'planner/ may import datamodel/, fleet/, domain/',
    ),
    // The simulator speaks the same wire protocols as the executor: it may share the protocol codecs
    // and transports under executor/cwmp and executor/usp, never the executor's state (db, fleet).
    only(
      'sim',
      ['datamodel', 'domain', 'platform', 'executor/cwmp', 'executor/usp'],
      'sim/ may import datamodel/ and the wire codecs',
    ),
    {
      name: 'sim-not-executor-state',
      severity: 'error',
      from: { path: '^sim/' },
      to: { path: '^(db|fleet)/', reachable: true },
    },
    only(
      'evals',
      ['planner', 'fleet', 'datamodel', 'domain', 'db', 'platform'],
      'evals/ measure the planner',
    ),
    only(
      'activities',
      ['domain', 'planner', 'policies', 'datamodel', 'executor', 'fleet', 'db', 'platform'],
      'activities/ may import everything below them',
    ),
    {
      name: 'workflows-imports',
      comment: 'workflows/ are deterministic: workflows/ and domain/ only; activities as types only',
      severity: 'error',
      from: { path: folder('workflows') },
      to: {
        path: '^(activities|planner|policies|datamodel|executor|fleet|db|api|sim|evals|bench|test|cli|platform)/',
        dependencyTypesNot: ['type-only'],
      },
    },
    {
      name: 'workflows-no-node-io',
      comment:
        'workflows/ must not use Node I/O (fs, net, crypto, timers...): it runs in the deterministic sandbox',
      severity: 'error',
      from: { path: '^(workflows|domain)/', pathNot: '\\.test\\.ts$' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'no-tests-from-code',
      severity: 'error',
      from: { pathNot: '(^test/|^bench/|\\.test\\.ts$)' },
      to: { path: '(^test/|\\.test\\.ts$)' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true, dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
      extensions: ['.ts', '.js'],
    },
    exclude: { path: '(node_modules|bench/results|\\.data)' },
  },
};
