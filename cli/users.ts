import os from 'node:os';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { appendAudit } from '../db/audit.js';
import {
  createIdentity,
  findIdentity,
  IdentityError,
  issueToken,
  listIdentities,
  listTokens,
  revokeToken,
  setDisabled,
  setRoles,
} from '../db/identities.js';
import { identityNameSchema, ROLES, type Role, roleSchema } from '../domain/approval/identity.js';
import { type CliIo, defaultIo, withDb } from './io.js';

function parseRoles(value: string): Role[] {
  const roles = value.split(',').map((r) => r.trim());
  for (const r of roles) {
    if (!roleSchema.safeParse(r).success)
      throw new InvalidArgumentError(`unknown role ${r} (one of ${ROLES.join(', ')})`);
  }
  return roles as Role[];
}

function parseName(value: string): string {
  const parsed = identityNameSchema.safeParse(value);
  if (!parsed.success) throw new InvalidArgumentError(parsed.error.issues[0]?.message ?? 'invalid name');
  return value;
}

function parseDays(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 3650)
    throw new InvalidArgumentError('a whole number of days, 1–3650');
  return n;
}

/** Who ran the command, for the audit log. */
const cliActor = () => ({ id: `cli:${os.userInfo().username}`, kind: 'system' as const });

/** A failure the operator can fix: one line, exit code 1. */
function fail(io: CliIo, message: string): void {
  io.err(`fleetbrain users: ${message}`);
  process.exitCode = 1;
}

/** `fleetbrain users`: identities, roles and bearer tokens (needs DATABASE_URL). */
export function usersCommand(program: Command, io: CliIo = defaultIo): void {
  const users = program.command('users').description('manage identities, roles and API tokens');

  users
    .command('create')
    .description('create a user (or, with --service, a service identity that can propose but never approve)')
    .argument('<name>', 'login name', parseName)
    .requiredOption('-r, --roles <roles>', `comma-separated: ${ROLES.join(', ')}`, parseRoles)
    .option('--service', 'a service identity (planner, reconciliation): viewer/operator roles only')
    .option('--display-name <text>', 'human-readable name')
    .option('--oidc-subject <sub>', 'the OIDC provider’s `sub` for JWT login')
    .option('--token', 'also issue a bearer token and print it once')
    .action(
      async (
        name: string,
        o: { roles: Role[]; service?: boolean; displayName?: string; oidcSubject?: string; token?: boolean },
      ) => {
        await withDb(io, async ({ db }) => {
          try {
            const row = await createIdentity(db, {
              name,
              kind: o.service ? 'service' : 'user',
              roles: o.roles,
              ...(o.displayName ? { displayName: o.displayName } : {}),
              ...(o.oidcSubject ? { oidcSubject: o.oidcSubject } : {}),
            });
            await appendAudit(db, {
              actor: cliActor(),
              action: 'identity.created',
              subject: { kind: 'identity', id: row.id },
              data: { name, kind: row.kind, roles: row.roles },
            });
            io.out(`created ${row.kind} ${row.name} (${row.id}) roles=${row.roles.join(',')}`);
            if (o.token) {
              const t = await issueToken(db, row.id, { name: 'initial' });
              await appendAudit(db, {
                actor: cliActor(),
                action: 'token.issued',
                subject: { kind: 'identity', id: row.id },
                data: { tokenId: t.id, prefix: t.prefix },
              });
              io.out(`token: ${t.token}`);
            }
          } catch (err) {
            if (err instanceof IdentityError) return fail(io, err.message);
            throw err;
          }
        });
      },
    );

  users
    .command('list')
    .description('list identities')
    .option('--json', 'one JSON document')
    .action(async (o: { json?: boolean }) => {
      await withDb(io, async ({ db }) => {
        const rows = await listIdentities(db);
        if (o.json) {
          io.out(
            JSON.stringify(
              rows.map((r) => ({
                id: r.id,
                name: r.name,
                kind: r.kind,
                roles: r.roles,
                disabled: r.disabled,
              })),
            ),
          );
          return;
        }
        for (const r of rows) {
          io.out(
            `${r.name}\t${r.kind}\t${r.roles.join(',') || '-'}${r.disabled ? '\tdisabled' : ''}\t${r.id}`,
          );
        }
      });
    });

  users
    .command('roles')
    .description('replace the roles of an identity')
    .argument('<name>', 'login name or id')
    .argument('<roles>', `comma-separated: ${ROLES.join(', ')}`, parseRoles)
    .action(async (name: string, roles: Role[]) => {
      await withDb(io, async ({ db }) => {
        try {
          const row = await setRoles(db, name, roles);
          await appendAudit(db, {
            actor: cliActor(),
            action: 'identity.roles_changed',
            subject: { kind: 'identity', id: row.id },
            data: { name: row.name, roles: row.roles },
          });
          io.out(`${row.name} roles=${row.roles.join(',')}`);
        } catch (err) {
          if (err instanceof IdentityError) return fail(io, err.message);
          throw err;
        }
      });
    });

  for (const [cmd, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    users
      .command(cmd)
      .description(`${cmd} an identity (its tokens ${disabled ? 'stop' : 'start'} working)`)
      .argument('<name>', 'login name or id')
      .action(async (name: string) => {
        await withDb(io, async ({ db }) => {
          try {
            await setDisabled(db, name, disabled);
            const row = await findIdentity(db, name);
            await appendAudit(db, {
              actor: cliActor(),
              action: disabled ? 'identity.disabled' : 'identity.enabled',
              subject: { kind: 'identity', id: row?.id ?? name },
              data: { name },
            });
            io.out(`${name} ${disabled ? 'disabled' : 'enabled'}`);
          } catch (err) {
            if (err instanceof IdentityError) return fail(io, err.message);
            throw err;
          }
        });
      });
  }

  users
    .command('token')
    .description(
      'issue a bearer token for an identity; the secret is printed once and only its hash is stored',
    )
    .argument('<name>', 'login name or id')
    .option('--label <text>', 'what the token is for', 'cli')
    .addOption(new Option('--expires-days <n>', 'lifetime in days').argParser(parseDays).default(90))
    .action(async (name: string, o: { label: string; expiresDays: number }) => {
      await withDb(io, async ({ db }) => {
        const row = await findIdentity(db, name);
        if (!row) return fail(io, `no identity ${name}`);
        const t = await issueToken(db, row.id, {
          name: o.label,
          expiresAt: new Date(Date.now() + o.expiresDays * 86_400_000),
        });
        await appendAudit(db, {
          actor: cliActor(),
          action: 'token.issued',
          subject: { kind: 'identity', id: row.id },
          data: { tokenId: t.id, prefix: t.prefix, expiresAt: t.expiresAt?.toISOString() },
        });
        io.out(t.token);
      });
    });

  users
    .command('tokens')
    .description("list an identity's tokens (prefixes only)")
    .argument('<name>', 'login name or id')
    .action(async (name: string) => {
      await withDb(io, async ({ db }) => {
        const row = await findIdentity(db, name);
        if (!row) return fail(io, `no identity ${name}`);
        for (const t of await listTokens(db, row.id)) {
          const state = t.revokedAt
            ? 'revoked'
            : t.expiresAt && t.expiresAt < new Date()
              ? 'expired'
              : 'active';
          io.out(`${t.id}\t${t.prefix}…\t${t.name}\t${state}`);
        }
      });
    });

  users
    .command('revoke-token')
    .description('revoke a token by id')
    .argument('<tokenId>', 'token id (from `users tokens`)')
    .action(async (tokenId: string) => {
      await withDb(io, async ({ db }) => {
        if (!/^[0-9a-f-]{36}$/i.test(tokenId) || !(await revokeToken(db, tokenId))) {
          return fail(io, `no active token ${tokenId}`);
        }
        await appendAudit(db, {
          actor: cliActor(),
          action: 'token.revoked',
          subject: { kind: 'token', id: tokenId },
          data: {},
        });
        io.out(`revoked ${tokenId}`);
      });
    });
}
