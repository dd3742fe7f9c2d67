// Resolves (building or installing when missing) every tool Fleetbrain runs; one line per tool.
import { ensureTools, ToolError } from '../platform/tools.js';

try {
  const tools = ensureTools();
  for (const [name, where] of Object.entries(tools)) console.log(`fleetbrain: ${name.padEnd(9)} ${where}`);
} catch (err) {
  if (err instanceof ToolError) {
    console.error(`fleetbrain: missing tool: ${err.message}`);
    process.exit(1);
  }
  throw err;
}
