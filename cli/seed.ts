import { connect } from '../db/client.js';
import { seedPolicyDefaults } from '../policies/store.js';

/** A fresh installation gets the default risk caps and maintenance window; existing rows stay. */
export async function seedDefaults(url: string): Promise<void> {
  const h = connect(url, { max: 1, applicationName: 'fleetbrain-seed' });
  try {
    await seedPolicyDefaults(h.db);
  } finally {
    await h.close();
  }
}
