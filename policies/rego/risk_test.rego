package fleetbrain_test

test_risk_requested_higher if matches("risk_requested_higher")

test_risk_lowering_does_not_escape_caps if matches("risk_lowering_does_not_escape_caps")

test_risk_uplink_disable_critical if matches("risk_uplink_disable_critical")

test_risk_half_fleet_is_high if matches("risk_half_fleet_is_high")

test_uplink_disable_is_explained if {
	some f in decide("risk_uplink_disable_critical").risk_factors
	f.source == "value"
	f.class == "critical"
}

test_requested_lower_class_is_only_a_factor if {
	d := decide("risk_lowering_does_not_escape_caps")
	some f in d.risk_factors
	f == {"source": "requested", "class": "low", "detail": "requested by the proposer"}
	d.risk_class == "high"
}

test_fleet_wide_flag if decide("risk_half_fleet_is_high").constraints.fleet_wide == true

test_risk_delete_uplink_object if matches("risk_delete_uplink_object")
