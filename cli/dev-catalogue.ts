import type { Db } from '../db/client.js';
import { firmwareImages, maintenanceWindows } from '../db/schema/index.js';
import type { OutcomeTable } from '../sim/device.js';
import type { SimFleet } from '../sim/cwmp/fleet.js';
import { modelByKey } from '../sim/models.js';

/**
 * `fleetbrain dev`'s firmware catalogue, so a newcomer can watch a rollout complete and one halt:
 * for the HGW-500 (a third of the simulated CWMP CPEs, on 2.1.0) a good image 2.2.0 and a bad
 * image 3.0.0 that bricks 4 % of the devices that install it (the simulator's configured outcome).
 * 2.1.0 is in the catalogue too: it is what a rollback re-downloads on single-bank devices.
 */
export const DEV_GOOD_IMAGE = '2.2.0';
export const DEV_BAD_IMAGE = '3.0.0';
export const DEV_OUTCOMES: OutcomeTable = { [`hgw500@${DEV_BAD_IMAGE}`]: { success: 0.96, brick: 0.04 } };

export async function seedDevCatalogue(db: Db, sim: SimFleet): Promise<string[]> {
  const model = modelByKey('hgw500');
  const entries = [
    { version: '2.1.0', from: [] as string[] },
    { version: DEV_GOOD_IMAGE, from: ['2.1.0'] },
    { version: DEV_BAD_IMAGE, from: ['2.1.0'] },
  ];
  for (const e of entries) {
    const info = sim.imageInfo(model, e.version);
    // The simulator's file server port changes per start: the URL is refreshed every time.
    const row = {
      version: e.version,
      models: [model.modelName],
      allowedFromVersions: e.from,
      url: info.url,
      size: info.size,
      checksum: info.sha256,
      status: 'approved',
    };
    await db
      .insert(firmwareImages)
      .values(row)
      .onConflictDoUpdate({
        target: firmwareImages.version,
        set: { url: row.url, size: row.size, checksum: row.checksum, updatedAt: new Date() },
      });
  }
  // Firmware campaigns are high risk, which requires a maintenance window: dev's is always open.
  await db
    .insert(maintenanceWindows)
    .values({
      name: 'dev-always',
      days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'],
      startMinute: 0,
      endMinute: 1440,
    })
    .onConflictDoNothing();
  return [
    `  catalogue    ${model.modelName} ${DEV_GOOD_IMAGE} (good), ${DEV_BAD_IMAGE} (bad: bricks 4 %) over 2.1.0`,
  ];
}
