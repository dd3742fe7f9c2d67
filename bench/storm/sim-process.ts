import { SimFleet } from '../../sim/cwmp/fleet.js';

/**
 * Child process of the storm benchmark: a slice of the simulated CPEs (devices firstIndex ..
 * firstIndex + count - 1), built on `prepare`, started at once on `storm` against the given URL from
 * its own loopback source addresses. Several of these run side by side: each process has its own
 * descriptor limit (20 000 here, not raisable), and together they use every core.
 */
interface PrepareCmd {
  cmd: 'prepare';
  url: string;
  count: number;
  firstIndex: number;
  serialPrefix: string;
  localAddresses: string[];
}
interface StormCmd {
  cmd: 'storm';
  retryScale: number;
  deadlineMs: number;
  concurrency: number;
}

let fleet: SimFleet | null = null;
// The benchmark ends its simulators with SIGTERM; exiting normally writes a CPU profile (STORM_PROF).
process.on('SIGTERM', () => process.exit(0));

process.on('message', async (m: PrepareCmd | StormCmd | { cmd: 'exit' }) => {
  if (m.cmd === 'exit') process.exit(0);
  if (m.cmd === 'prepare') {
    fleet = new SimFleet({
      acsUrl: m.url,
      count: m.count,
      firstIndex: m.firstIndex,
      serialPrefix: m.serialPrefix,
      periodicIntervalS: 0,
      localAddresses: m.localAddresses,
      secret: 'sim-secret',
      seed: 11,
    });
    await fleet.start();
    process.send?.({ prepared: true });
    return;
  }
  if (!fleet) throw new Error('storm before prepare');
  const cpu0 = process.cpuUsage();
  const s = await fleet.storm({
    retryScale: m.retryScale,
    deadlineMs: m.deadlineMs,
    concurrency: m.concurrency,
  });
  const cpu = process.cpuUsage(cpu0);
  await fleet.stop();
  process.send?.({
    cpuMs: (cpu.user + cpu.system) / 1000,
    ok: s.ok,
    sessions: s.sessions,
    rejected503: s.rejected503,
    errors: s.errors,
    informsAcked: s.informsAcked,
    latenciesMs: s.latenciesMs,
    firstStart: s.firstStart,
    lastDone: s.lastDone,
    sampleErrors: s.sampleErrors,
    // Per device: informs the simulator saw answered with InformResponse.
    acked: Object.fromEntries(fleet.devices.map((d) => [d.agent.device.id, d.agent.informsAcked])),
    peakRss: process.memoryUsage.rss(),
  });
});
process.send?.({ ready: true });
