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

# The facts the engine derives only let rules skip work: every case decides the same with them.
test_engine_facts_change_no_decision if {
	with_facts := [name | some name, c in data.testdata.cases; c.engine_facts]
	count(with_facts) > 40
	every name in with_facts {
		decide_with_engine_facts(name) == decide(name)
	}
}
