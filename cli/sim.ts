import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { z } from 'zod';
import { SimFleet } from '../sim/cwmp/fleet.js';
import { onShutdown } from './shared.js';

const Options = z.object({
  acs: z.url(),
  count: z.coerce.number().int().positive().max(200_000),
  models: z.string().optional(),
  periodic: z.coerce.number().int().nonnegative(),
  jitter: z.coerce.number().min(0).max(1),
  natUdp: z.coerce.number().min(0).max(1),
  natBlocked: z.coerce.number().min(0).max(1),
  outcomes: z.string().optional(),
  topology: z.string().optional(),
  credentials: z.string().optional(),
  storm: z.string().optional(),
  seed: z.coerce.number().int(),
  secret: z.string().min(1),
});

/** `fleetbrain sim`: a simulated CPE fleet speaking CWMP to an ACS, in its own process. */
export function simCommand(program: Command): void {
  program
    .command('sim')
    .description('run a simulated CPE fleet speaking CWMP over HTTP to an ACS')
    .requiredOption('--acs <url>', 'ACS URL, e.g. http://127.0.0.1:7547/')
    .option('--count <n>', 'number of CPEs', '100')
    .option('--models <keys>', 'comma-separated model keys (hgw500, ontx1, gw98)')
    .option('--periodic <s>', 'periodic inform interval in seconds (0 = off)', '300')
    .option('--jitter <share>', 'periodic inform jitter as a share of the interval', '0.1')
    .option('--nat-udp <share>', 'share of CPEs behind NAT with only a UDP address', '0')
    .option('--nat-blocked <share>', 'share of CPEs behind NAT without any connection-request path', '0')
    .option(
      '--outcomes <file>',
      'JSON outcome table, e.g. {"hgw500@3.0.0": {"success": 0.99, "brick": 0.01}}',
    )
    .option('--topology <file>', 'write the topology feed (JSON) for `fleetbrain fleet import-topology`')
    .option('--credentials <file>', 'write per-device credentials (JSON) for provisioning the executor')
    .option('--storm <region>', 'after start, all CPEs of the region (or "all") reconnect at once')
    .option('--seed <n>', 'random seed', '1')
    .option('--secret <s>', 'secret the per-device passwords derive from', 'sim-secret')
    .action(async (raw: Record<string, string>) => {
      const parsed = Options.safeParse(raw);
      if (!parsed.success) {
        const i = parsed.error.issues[0];
        throw new Error(`sim: --${String(i?.path[0] ?? '')}: ${i?.message}`);
      }
      const o = parsed.data;
      const none = Math.max(0, 1 - o.natUdp - o.natBlocked);
      const fleet = new SimFleet({
        acsUrl: o.acs,
        count: o.count,
        models: o.models?.split(','),
        periodicIntervalS: o.periodic,
        jitter: o.jitter,
        nat: { none, udp_only: o.natUdp, blocked: o.natBlocked },
        outcomes: o.outcomes ? JSON.parse(readFileSync(o.outcomes, 'utf8')) : undefined,
        seed: o.seed,
        secret: o.secret,
      });
      await fleet.start();
      if (o.topology) writeFileSync(o.topology, JSON.stringify(fleet.topology(), null, 1));
      if (o.credentials)
        writeFileSync(
          o.credentials,
          JSON.stringify(
            fleet.devices.map((d) => ({
              deviceId: d.agent.device.id,
              username: d.username,
              password: d.password,
              crUsername: d.crUsername,
              crPassword: d.crPassword,
            })),
          ),
        );
      process.stderr.write(
        `sim: ${fleet.devices.length} CPEs, connection requests on :${fleet.crPort}, files on :${fleet.filePort}\n`,
      );
      // First contact: every device boots and informs (bounded window), then periodic informs.
      const first = await fleet.storm({ concurrency: 500, retryScale: 1 });
      process.stderr.write(
        `sim: first informs ok=${first.ok} 503=${first.rejected503} errors=${first.errors}\n`,
      );
      fleet.startPeriodic();
      if (o.storm) {
        const s = await fleet.storm({ region: o.storm === 'all' ? undefined : o.storm, retryScale: 1 });
        process.stderr.write(`sim: storm ok=${s.ok} 503=${s.rejected503} errors=${s.errors}\n`);
      }
      onShutdown(() => fleet.stop());
    });
}
