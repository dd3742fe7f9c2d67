package fleetbrain_test

test_outside_window if matches("outside_window")

test_low_risk_outside_window if matches("low_risk_outside_window")

test_window_one_zone_outside if matches("window_one_zone_outside")

test_window_cross_midnight_allowed if matches("window_cross_midnight_allowed")

test_window_cross_midnight_denied if matches("window_cross_midnight_denied")

test_window_deny_names_only_the_zone_outside if {
	[d] := deny_for("window_one_zone_outside", "maintenance_window")
	contains(d.message, "America/New_York local time tue 21:00")
}

test_no_local_times if matches("no_local_times")

test_window_cross_midnight_before_midnight if matches("window_cross_midnight_before_midnight")
