import { type Command, InvalidArgumentError } from 'commander';
import { auditHead, listAudit, verifyAudit } from '../db/audit.js';
import { type CliIo, defaultIo, withDb } from './io.js';

function parseHead(value: string): { seq: number; hash: string } {
  const m = /^(\d+):([0-9a-f]{64})$/.exec(value);
  if (!m?.[1] || !m[2])
    throw new InvalidArgumentError('<seq>:<sha-256 hex>, as printed by `fleetbrain audit head`');
  return { seq: Number(m[1]), hash: m[2] };
}

/** `fleetbrain audit`: verify the hash chain, export its head, read entries (needs DATABASE_URL). */
export function auditCommand(program: Command, io: CliIo = defaultIo): void {
  const audit = program.command('audit').description('the hash-chained audit log');

  audit
    .command('verify')
    .description('recompute the chain and report the first broken link (exit code 1 if any)')
    .option('--expect-head <seq:hash>', 'an exported head that must still be in the log', parseHead)
    .option('--json', 'one JSON document')
    .action(async (o: { expectHead?: { seq: number; hash: string }; json?: boolean }) => {
      await withDb(io, async ({ db }) => {
        const r = await verifyAudit(db, o.expectHead ? { expectHead: o.expectHead } : {});
        if (o.json) io.out(JSON.stringify(r));
        else if (r.ok) io.out(`ok: ${r.entries} entries, head ${r.head.seq}:${r.head.hash}`);
        else
          io.out(
            `BROKEN at entry ${r.firstBreak.seq} (${r.firstBreak.kind}): ${r.firstBreak.message}; ${r.entries} entries before it verify`,
          );
        if (!r.ok) process.exitCode = 1;
      });
    });

  audit
    .command('head')
    .description('print the newest entry as <seq>:<hash> (store it elsewhere; verify against it later)')
    .option('--json', 'one JSON document')
    .action(async (o: { json?: boolean }) => {
      await withDb(io, async ({ db }) => {
        const h = await auditHead(db);
        io.out(o.json ? JSON.stringify(h) : `${h.seq}:${h.hash}`);
      });
    });

  audit
    .command('list')
    .description('print entries, oldest first')
    .option('--subject <kind:id>', 'only entries about this subject')
    .option('--after <seq>', 'only entries after this sequence number', (v) => Number.parseInt(v, 10))
    .option('--limit <n>', 'at most this many', (v) => Number.parseInt(v, 10), 100)
    .action(async (o: { subject?: string; after?: number; limit: number }) => {
      const [kind, ...rest] = o.subject?.split(':') ?? [];
      await withDb(io, async ({ db }) => {
        const rows = await listAudit(db, {
          ...(kind ? { subjectKind: kind } : {}),
          ...(rest.length ? { subjectId: rest.join(':') } : {}),
          ...(o.after !== undefined ? { afterSeq: o.after } : {}),
          limit: o.limit,
        });
        for (const r of rows) {
          io.out(
            `${r.seq}\t${r.at.toISOString()}\t${r.actorKind}:${r.actorId}\t${r.action}\t${r.subjectKind}:${r.subjectId}\t${JSON.stringify(r.data)}`,
          );
        }
      });
    });
}
