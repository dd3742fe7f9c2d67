// Resolves (building or installing when missing) the named tools, or all; one line per tool.
import {
  chromiumBin,
  mosquittoBin,
  opaBin,
  postgresBinDir,
  schemathesisBin,
  temporalCli,
  ToolError,
} from '../platform/tools.js';

const resolvers: Record<string, () => string> = {
  temporal: temporalCli,
  opa: opaBin,
  postgres: postgresBinDir,
  mosquitto: mosquittoBin,
  chromium: chromiumBin,
  schemathesis: schemathesisBin,
};

const names = process.argv.slice(2);
try {
  for (const name of names.length > 0 ? names : Object.keys(resolvers)) {
    const resolve = resolvers[name];
    if (!resolve) throw new ToolError(`unknown tool '${name}' (known: ${Object.keys(resolvers).join(', ')})`);
    console.log(`fleetbrain: ${name.padEnd(9)} ${resolve()}`);
  }
} catch (err) {
  if (err instanceof ToolError) {
    console.error(`fleetbrain: missing tool: ${err.message}`);
    process.exit(1);
  }
  throw err;
}
