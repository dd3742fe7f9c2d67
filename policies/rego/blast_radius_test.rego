package fleetbrain_test

test_high_risk_within_caps if matches("high_risk_within_caps")

test_cohort_too_large_critical if matches("cohort_too_large_critical")

test_fleet_share_too_large_critical if matches("fleet_share_too_large_critical")

test_topology_share_too_large if matches("topology_share_too_large")
