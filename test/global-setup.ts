// Placeholder until the service harness lands: FB_TEST_SERVICES=none skips services.
export default async function setup(): Promise<void> {}
