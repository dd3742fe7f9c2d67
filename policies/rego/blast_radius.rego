# Blast-radius caps by risk class: cohort size, share of the fleet, share of any topology element.
package fleetbrain

deny contains {"code": "cohort_too_large", "message": msg} if {
	input.cohort.size > caps.max_cohort_size
	msg := sprintf(
		"cohort of %d devices exceeds %d for risk class %s",
		[input.cohort.size, caps.max_cohort_size, risk_class],
	)
}

deny contains {"code": "fleet_share_too_large", "message": msg} if {
	fleet_share > caps.max_fleet_share
	msg := sprintf(
		"cohort is %d%% of the fleet, above %d%% for risk class %s",
		[round(fleet_share * 100), round(caps.max_fleet_share * 100), risk_class],
	)
}

deny contains {"code": "topology_share_too_large", "message": msg} if {
	cap := caps.max_topology_share
	topology_may_exceed(cap)
	some t in input.cohort.topology
	t.count > t.total * cap
	msg := sprintf(
		"cohort covers %d of %d devices on %s %s, above %d%% for risk class %s",
		[t.count, t.total, t.kind, t.id, round(caps.max_topology_share * 100), risk_class],
	)
}

# The engine adds cohort.topology_peak, the element with the highest share (chosen by exact integer
# comparison). When even it stays clearly within the cap, no element exceeds it and the scan over
# hundreds of elements is skipped; the 1e-6 margin covers rounding in `total * cap`. Inputs
# without a peak (opa test, hand-written) are always scanned.
topology_may_exceed(cap) if {
	p := input.cohort.topology_peak
	p.count >= (p.total * cap) * 0.999999
}

topology_may_exceed(_) if not has_key(input.cohort, "topology_peak")
