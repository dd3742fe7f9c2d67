import { readFileSync } from 'node:fs';
import { Client, Connection, ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import { type Command, InvalidArgumentError } from 'commander';
import { desc } from 'drizzle-orm';
import { changeFights, deviceEffectiveConfig, fleetConflicts } from '../activities/profiles.js';
import {
  deleteProfile,
  getProfile,
  listProfiles,
  ProfileStoreError,
  profileHistory,
  putProfile,
  setPrecedenceRules,
} from '../db/profiles.js';
import { profileReconcileRuns } from '../db/schema/profiles.js';
import { PrecedenceOrder } from '../domain/profiles/precedence.js';
import { ProfileSpec } from '../domain/profiles/profile.js';
import { SelectorError, parseSelector } from '../fleet/selector.js';
import { loadConfig } from '../platform/config.js';
import { type CliIo, defaultIo, withDb } from './io.js';

/** The Temporal side of `profiles reconcile` (run now, schedule); tests pass their own. */
export interface ProfilesTemporal {
  open(): Promise<{ client: Client; taskQueue: string; close(): Promise<void> }>;
}

const defaultTemporal: ProfilesTemporal = {
  async open() {
    const config = loadConfig();
    const connection = await Connection.connect({ address: config.temporal.address });
    return {
      client: new Client({ connection, namespace: config.temporal.namespace }),
      taskQueue: config.temporal.taskQueues.workflows,
      close: () => connection.close(),
    };
  },
};

export const RECONCILE_SCHEDULE_ID = 'profile-reconcile';

/** A failure the user can fix: one line, exit code 2. */
class UsageError extends Error {}

function readJson(file: string): unknown {
  try {
    return JSON.parse(file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`${file}: ${(e as Error).message}`);
  }
}

function parseSpec(raw: unknown): ProfileSpec {
  const r = ProfileSpec.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new UsageError(`profile ${i?.path.join('.') || '(root)'}: ${i?.message ?? 'invalid'}`);
  }
  parseSelector(r.data.selector);
  return r.data;
}

function duration(v: string): number {
  const m = /^(\d+)(s|m|h)$/.exec(v);
  if (!m) throw new InvalidArgumentError('a duration like 30s, 15m or 1h');
  return Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000 }[m[2] as 's' | 'm' | 'h'];
}

const CLI_ACTOR = { id: 'cli', kind: 'system' as const };

/** `fleetbrain profiles`: configuration profiles with parameter ownership (needs DATABASE_URL). */
export function profilesCommand(
  program: Command,
  io: CliIo = defaultIo,
  temporal: ProfilesTemporal = defaultTemporal,
): void {
  const cmd = program
    .command('profiles')
    .description('configuration profiles, ownership, conflicts and reconcile');
  const guard = async (fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      if (e instanceof UsageError || e instanceof ProfileStoreError || e instanceof SelectorError) {
        io.err(`fleetbrain profiles: ${e.message}`);
        process.exitCode = 2;
        return;
      }
      throw e;
    }
  };

  cmd
    .command('list')
    .description('stored profiles: id, version, priority, kind, validity, parameters')
    .option('--json', 'JSON lines')
    .action((o: { json?: boolean }) =>
      guard(() =>
        withDb(io, async ({ db }) => {
          for (const p of await listProfiles(db)) {
            if (o.json) io.out(JSON.stringify(p));
            else
              io.out(
                [
                  p.id,
                  `v${p.version}`,
                  `priority=${p.priority}`,
                  p.kind,
                  p.validUntil ? `until=${p.validUntil.toISOString()}` : 'until=-',
                  `${p.parameters.length} parameters`,
                ].join('\t'),
              );
          }
        }),
      ),
    );

  cmd
    .command('show')
    .argument('<id>')
    .description('one profile as JSON')
    .action((id: string) =>
      guard(() =>
        withDb(io, async ({ db }) => {
          const p = await getProfile(db, id);
          if (!p) throw new UsageError(`no profile ${id}`);
          io.out(JSON.stringify(p, null, 2));
        }),
      ),
    );

  cmd
    .command('create')
    .argument(
      '<file>',
      'profile JSON (name, selector, parameters, priority, owner, validFrom, validUntil); - for stdin',
    )
    .description('create a profile')
    .action((file: string) =>
      guard(() =>
        withDb(io, async ({ db }) => {
          const p = await putProfile(db, parseSpec(readJson(file)), CLI_ACTOR, { mode: 'create' });
          io.out(`created ${p.id} v${p.version}`);
        }),
      ),
    );

  cmd
    .command('plan')
    .argument('<file>', 'profile JSON to plan (a new one, or a new version of a stored one)')
    .description(
      'without storing anything: the conflicts the profile would take part in (exit 1 if any is unresolved)',
    )
    .action((file: string) =>
      guard(() =>
        withDb(io, async ({ db }) => {
          const spec = parseSpec(readJson(file));
          const stored = await getProfile(db, spec.name);
          const r = await fleetConflicts(db, {
            candidate: { ...spec, id: spec.name, version: (stored?.version ?? 0) + 1, updatedAt: new Date() },
            involving: spec.name,
            sampleSize: 3,
          });
          io.out(
            `${spec.name}: ${r.groups.length} conflicts over ${r.devices} devices; rules ${r.rules.join(' > ')}`,
          );
          for (const g of r.groups)
            io.out(
              [
                g.path,
                g.claims.map((c) => `${c.profileId}=${String(c.value)}`).join(' vs '),
                `${g.devices} devices`,
                g.status === 'conflict'
                  ? 'UNRESOLVED'
                  : `${g.status}: ${String(g.value)} (${g.overridden.map((o) => `${o.profileId} by ${o.rule}`).join(', ')})`,
              ].join('\t'),
            );
          if (r.groups.some((g) => g.status === 'conflict')) process.exitCode = 1;
        }),
      ),
    );

  cmd
    .command('update')
    .argument('<file>', 'the whole new profile JSON; parameters left out are released')
    .option('--expect-version <n>', 'refuse unless the stored version is this one', (v) =>
      Number.parseInt(v, 10),
    )
    .description('replace a profile')
    .action((file: string, o: { expectVersion?: number }) =>
      guard(() =>
        withDb(io, async ({ db }) => {
          const p = await putProfile(db, parseSpec(readJson(file)), CLI_ACTOR, {
            mode: 'update',
            ...(o.expectVersion !== undefined ? { expectedVersion: o.expectVersion } : {}),
          });
          io.out(`updated ${p.id} v${p.version}`);
        }),
      ),
    );

  cmd
    .command('delete')
    .argument('<id>')
    .description('delete a profile (its fields are released; history is kept)')
    .action((id: string) =>
      guard(() =>
        withDb(io, async ({ db }) => {
          io.out(`deleted ${id} (v${await deleteProfile(db, id, CLI_ACTOR)})`);
        }),
      ),
    );

  cmd
    .command('history')
    .argument('<id>')
    .description('every version of a profile')
    .action((id: string) =>
      guard(() =>
        withDb(io, async ({ db }) => {
          const rows = await profileHistory(db, id);
          if (rows.length === 0) throw new UsageError(`no profile ${id}`);
          for (const r of rows) io.out([`v${r.version}`, r.action, r.actor, r.at.toISOString()].join('\t'));
        }),
      ),
    );

  cmd
    .command('effective')
    .argument('<deviceId>')
    .description("a device's effective configuration: value, status, owners, reported value, drift")
    .option('--json', 'one JSON document')
    .action((deviceId: string, o: { json?: boolean }) =>
      guard(() =>
        withDb(io, async ({ db }) => {
          const c = await deviceEffectiveConfig(db, deviceId);
          if (!c) throw new UsageError(`no device ${deviceId}`);
          if (o.json) return io.out(JSON.stringify(c));
          for (const f of c.fields)
            io.out(
              [
                f.path,
                f.value === undefined ? '(unresolved)' : String(f.value),
                f.status,
                f.owners.join(',') || '-',
                f.reported ?? '-',
                f.drifted ? 'DRIFT' : 'ok',
              ].join('\t'),
            );
          for (const i of c.invalid)
            io.out(`invalid on this firmware: ${i.profileId} ${i.path}: ${i.message}`);
        }),
      ),
    );

  cmd
    .command('conflicts')
    .description('fleet-wide conflicts (exit code 1 when any is unresolved)')
    .option('--json', 'one JSON document')
    .action((o: { json?: boolean }) =>
      guard(() =>
        withDb(io, async ({ db }) => {
          const r = await fleetConflicts(db, { sampleSize: 3 });
          if (o.json) io.out(JSON.stringify(r));
          else {
            io.out(
              `${r.devices} devices, ${r.profiles} profiles: ${r.conflictingPairs} conflicting (device, parameter) pairs, ${r.unresolvedPairs} unresolved; rules ${r.rules.join(' > ')}`,
            );
            for (const g of r.groups)
              io.out(
                [
                  g.path,
                  g.claims.map((c) => `${c.profileId}=${String(c.value)}`).join(' vs '),
                  `${g.devices} devices`,
                  g.status === 'conflict'
                    ? `UNRESOLVED (${g.escalation})`
                    : `${g.status}: ${String(g.value)}`,
                ].join('\t'),
              );
          }
          if (r.unresolvedPairs > 0) process.exitCode = 1;
        }),
      ),
    );

  cmd
    .command('check-change')
    .argument('<file>', 'JSON { selector, items: [{ path, value }] } of a change request')
    .description('does a change request fight a profile? (exit code 1 when it does)')
    .action((file: string) =>
      guard(() =>
        withDb(io, async ({ db }) => {
          const raw = readJson(file) as {
            selector?: unknown;
            items?: Array<{ path: string; value: string | number | boolean }>;
          };
          if (!raw?.selector || !Array.isArray(raw.items))
            throw new UsageError('expected { selector, items }');
          const r = await changeFights(db, { selector: raw.selector, items: raw.items });
          io.out(`${r.targets} target devices, ${r.fights.length} fights`);
          for (const f of r.fights)
            io.out(
              `${f.path}: ${String(f.value)} vs ${String(f.effective)} owned by ${f.owners.join(',')} on ${f.devices} devices`,
            );
          if (r.fights.length > 0) process.exitCode = 1;
        }),
      ),
    );

  cmd
    .command('precedence')
    .argument('<rules>', 'comma-separated order of priority, specificity, newest')
    .description('set the order in which precedence rules decide conflicts')
    .action((rules: string) =>
      guard(() =>
        withDb(io, async ({ db }) => {
          const r = PrecedenceOrder.safeParse(rules.split(',').filter(Boolean));
          if (!r.success) throw new UsageError(`rules: ${r.error.issues[0]?.message ?? 'invalid'}`);
          await setPrecedenceRules(db, r.data, CLI_ACTOR);
          io.out(`precedence: ${r.data.join(' > ')}`);
        }),
      ),
    );

  const rec = cmd.command('reconcile').description('bring profile-owned fields back on drifted devices');
  rec
    .command('status')
    .description('recent reconcile runs with their counts')
    .option('--limit <n>', 'how many', (v) => Number.parseInt(v, 10), 5)
    .action((o: { limit: number }) =>
      guard(() =>
        withDb(io, async ({ db }) => {
          const rows = await db
            .select()
            .from(profileReconcileRuns)
            .orderBy(desc(profileReconcileRuns.startedAt))
            .limit(o.limit);
          for (const r of rows)
            io.out(
              [
                r.id,
                r.status,
                r.trigger,
                r.startedAt.toISOString(),
                Object.entries(r.counts)
                  .map(([k, v]) => `${k}=${v}`)
                  .join(' '),
              ].join('\t'),
            );
        }),
      ),
    );
  rec
    .command('run')
    .description('start a reconcile run now (needs a worker)')
    .option('--device <id...>', 'only these devices')
    .option('--wait', 'wait for the run to finish and print its counts')
    .action((o: { device?: string[]; wait?: boolean }) =>
      guard(async () => {
        const t = await temporal.open();
        try {
          const workflowId = `profile-reconcile-manual-${Date.now()}`;
          const h = await t.client.workflow.start('profileReconcile', {
            taskQueue: t.taskQueue,
            workflowId,
            args: [{ trigger: 'manual', ...(o.device ? { devices: o.device } : {}) }],
          });
          io.out(`started ${workflowId}`);
          if (o.wait) io.out(JSON.stringify(await h.result()));
        } finally {
          await t.close();
        }
      }),
    );
  rec
    .command('schedule')
    .description('create or update the Temporal schedule that runs reconcile periodically')
    .option('--every <duration>', 'interval (30s, 15m, 1h)', duration, 15 * 60_000)
    .option('--delete', 'remove the schedule')
    .action((o: { every: number; delete?: boolean }) =>
      guard(async () => {
        const t = await temporal.open();
        try {
          const handle = t.client.schedule.getHandle(RECONCILE_SCHEDULE_ID);
          if (o.delete) {
            await handle.delete();
            return io.out(`deleted schedule ${RECONCILE_SCHEDULE_ID}`);
          }
          const action = {
            type: 'startWorkflow' as const,
            workflowType: 'profileReconcile',
            taskQueue: t.taskQueue,
            workflowId: 'profile-reconcile-scheduled',
            args: [{ trigger: 'schedule' }],
          };
          try {
            await handle.update((prev) => ({ ...prev, spec: { intervals: [{ every: o.every }] }, action }));
            io.out(`updated schedule ${RECONCILE_SCHEDULE_ID}: every ${o.every / 1000}s`);
          } catch (e) {
            if (!(e instanceof ScheduleNotFoundError)) throw e;
            await t.client.schedule.create({
              scheduleId: RECONCILE_SCHEDULE_ID,
              spec: { intervals: [{ every: o.every }] },
              // Never two passes at once: a slow pass delays the next, it does not race it.
              policies: { overlap: ScheduleOverlapPolicy.SKIP },
              action,
            });
            io.out(`created schedule ${RECONCILE_SCHEDULE_ID}: every ${o.every / 1000}s`);
          }
        } finally {
          await t.close();
        }
      }),
    );
}
