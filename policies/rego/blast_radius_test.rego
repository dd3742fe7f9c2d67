package fleetbrain_test

import data.fleetbrain

test_high_risk_within_caps if matches("high_risk_within_caps")

test_cohort_too_large_critical if matches("cohort_too_large_critical")

test_fleet_share_too_large_critical if matches("fleet_share_too_large_critical")

test_topology_share_too_large if matches("topology_share_too_large")

# The engine's topology_peak only lets the scan be skipped; it never changes a decision.
with_peak(name, peak) := object.union(data.testdata.cases[name].input, {"cohort": {"topology_peak": peak}})

decide_with_peak(name, peak) := d if {
	d := fleetbrain.decision with input as with_peak(name, peak) with data.policy_data as case_data(name)
}

test_topology_peak_over_cap_scans_every_element if {
	d := decide_with_peak("topology_share_too_large", {"count": 60, "total": 64})
	d == decide("topology_share_too_large")
	count([x | some x in d.deny; x.code == "topology_share_too_large"]) == 1
}

test_topology_peak_within_cap_allows if {
	d := decide_with_peak("high_risk_within_caps", {"count": 300, "total": 10000})
	d == decide("high_risk_within_caps")
	d.allow
}

# An element exactly at the cap (32 of 64 at 50%) is within it, with or without the peak.
test_topology_peak_at_cap_allows if {
	inp := object.union(data.testdata.cases.high_risk_within_caps.input, {"cohort": {
		"topology": [{"kind": "pon_port", "id": "p1", "count": 32, "total": 64}],
		"topology_peak": {"count": 32, "total": 64},
	}})
	d := fleetbrain.decision with input as inp with data.policy_data as data.testdata.policy_data
	d.allow
}
