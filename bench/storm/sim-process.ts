import { SimFleet } from '../../sim/cwmp/fleet.js';

/**
 * Child process of the storm benchmark: N simulated CPEs that start their sessions at once against
 * the given URL, spread over several loopback source addresses. Replies with the simulator's counts.
 */
interface StormCmd {
  cmd: 'storm';
  url: string;
  count: number;
  serialPrefix: string;
  localAddresses: string[];
  retryScale: number;
  deadlineMs: number;
  concurrency: number;
}

process.on('message', async (m: StormCmd | { cmd: 'exit' }) => {
  if (m.cmd === 'exit') process.exit(0);
  const fleet = new SimFleet({
    acsUrl: m.url,
    count: m.count,
    serialPrefix: m.serialPrefix,
    periodicIntervalS: 0,
    localAddresses: m.localAddresses,
    secret: 'sim-secret',
    seed: 11,
  });
  await fleet.start();
  // In-flight window bounded by the descriptor limit (hard limit here: see notes); all start at once up to it.
  const s = await fleet.storm({
    retryScale: m.retryScale,
    deadlineMs: m.deadlineMs,
    concurrency: m.concurrency,
  });
  await fleet.stop();
  const lat = s.latenciesMs.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0;
  process.send?.({
    ok: s.ok,
    sessions: s.sessions,
    rejected503: s.rejected503,
    errors: s.errors,
    informsAcked: s.informsAcked,
    p50: q(0.5),
    p99: q(0.99),
    spanMs: s.lastDone - s.firstStart,
    sampleErrors: s.sampleErrors,
    // Per device: informs the simulator saw answered with InformResponse.
    acked: Object.fromEntries(fleet.devices.map((d) => [d.agent.device.id, d.agent.informsAcked])),
    peakRss: process.memoryUsage.rss(),
  });
});
process.send?.({ ready: true });
