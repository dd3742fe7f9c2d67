import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { describe, expect, inject, it } from 'vitest';

// Every committed history must replay on the current workflow code (invariant 1).
const replayDir = path.join(import.meta.dirname, '..', 'replay');
const files = readdirSync(replayDir).filter((f) => f.endsWith('.json'));

describe('replay of committed histories', () => {
  it('has histories to replay', () => {
    expect(files.length).toBeGreaterThan(0);
  });
  it.each(files)('%s replays without non-determinism', async (file) => {
    const history = JSON.parse(readFileSync(path.join(replayDir, file), 'utf8'));
    const code = readFileSync(inject('workflowBundlePath'), 'utf8');
    await expect(
      Worker.runReplayHistory({ workflowBundle: { code } }, history, file.replace(/\.json$/, '')),
    ).resolves.toBeUndefined();
  });
});
