/**
 * A device's fleet identity, the same for every protocol: TR-069 §3.4.4's DeviceId
 * `OUI-ProductClass-SerialNumber` (`OUI-SerialNumber` without a product class). The CWMP ACS names
 * devices this way from the Inform's DeviceId, and the USP controller from the agent's
 * DeviceInfo / OnBoardRequest, so a device moved between protocols keeps its inventory row, its
 * history (device_events) and what selects it (profiles' ownership, rollouts).
 */
export function fleetDeviceId(d: { oui: string; productClass?: string; serialNumber: string }): string {
  return d.productClass ? `${d.oui}-${d.productClass}-${d.serialNumber}` : `${d.oui}-${d.serialNumber}`;
}
