package fleetbrain_test

import data.fleetbrain

test_baseline_wifi_change if matches("baseline_wifi_change")

test_empty_input if matches("empty_input")

test_change_does_nothing if matches("change_does_nothing")

test_policy_data_missing if matches("policy_data_missing")

test_policy_data_present if matches("policy_data_present")

test_no_input_at_all_denies if {
	d := fleetbrain.decision with data.policy_data as data.testdata.policy_data
	d.allow == false
	d.risk_class == "critical"
}

test_unknown_action if matches("unknown_action")

test_cohort_larger_than_fleet if matches("cohort_larger_than_fleet")

test_firmware_kind_without_image if matches("firmware_kind_without_image")
