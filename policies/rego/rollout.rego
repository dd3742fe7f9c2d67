# Rollout constraints: first wave size, minimum waves, brick-rate threshold bounds.
package fleetbrain

rollout := input.change.rollout

# The brick-rate gate judges each stratum, so the first wave needs a device from each. The engine
# adds the count as cohort.strata_in_cohort (once per plan); without it, it is counted here.
strata_in_cohort := input.cohort.strata_in_cohort if has_key(input.cohort, "strata_in_cohort")

else := count([s | some s in input.cohort.strata; s.count > 0])

# A helper rule, because `not is_object(x)` with x undefined is itself undefined.
has_rollout if is_object(rollout)

min_first_wave := max({1, strata_in_cohort})

deny contains {"code": "rollout_missing", "message": msg} if {
	input.change.kind == "firmware"
	not has_rollout
	msg := "a firmware campaign needs a rollout plan (first wave, waves, brick-rate threshold)"
}

deny contains {"code": "rollout_first_wave_too_large", "message": msg} if {
	rollout.first_wave_size > caps.max_first_wave_size
	msg := sprintf(
		"first wave of %d exceeds %d for risk class %s",
		[rollout.first_wave_size, caps.max_first_wave_size, risk_class],
	)
}

deny contains {"code": "rollout_first_wave_too_small", "message": msg} if {
	rollout.first_wave_size < min_first_wave
	msg := sprintf("first wave of %d cannot cover the cohort's %d strata", [rollout.first_wave_size, min_first_wave])
}

deny contains {"code": "rollout_too_few_waves", "message": msg} if {
	rollout.waves < caps.min_waves
	msg := sprintf("%d waves, risk class %s needs at least %d", [rollout.waves, risk_class, caps.min_waves])
}

deny contains {"code": "rollout_brick_threshold", "message": msg} if {
	has_rollout
	not brick_threshold_in_bounds
	msg := sprintf(
		"brick-rate threshold must lie within [%s, %s] for risk class %s",
		[format_rate(caps.brick_rate_min), format_rate(caps.brick_rate_max), risk_class],
	)
}

brick_threshold_in_bounds if {
	rollout.brick_rate_threshold >= caps.brick_rate_min
	rollout.brick_rate_threshold <= caps.brick_rate_max
}

# Per-mille with two decimals, formatted without floats so every engine prints the same text.
format_rate(r) := sprintf("%d.%d%d‰", [floor(n / 100), floor(n / 10) % 10, n % 10]) if {
	n := round(r * 100000)
}
