package fleetbrain_test

test_firmware_without_rollout if matches("firmware_without_rollout")

test_rollout_first_wave_too_large if matches("rollout_first_wave_too_large")

test_rollout_first_wave_too_small if matches("rollout_first_wave_too_small")

test_rollout_too_few_waves if matches("rollout_too_few_waves")

test_rollout_brick_threshold_too_lax if matches("rollout_brick_threshold_too_lax")

test_rollout_brick_threshold_too_strict if matches("rollout_brick_threshold_too_strict")

test_rollout_constraints_follow_risk_class_and_strata if {
	c := decide("firmware_campaign_ok").constraints
	c.min_first_wave_size == 3
	c.max_first_wave_size == 100
	c.min_waves == 3
	c.brick_rate_threshold == {"min": 0.0005, "max": 0.01}
}

test_brick_threshold_message_prints_bounds if {
	[d] := deny_for("rollout_brick_threshold_too_lax", "rollout_brick_threshold")
	contains(d.message, "[0.50‰, 10.00‰]")
}
