# Maintenance windows, checked against each affected time zone's local time (computed by the
# caller: the wasm runtime has no time built-ins).
package fleetbrain

previous_day := {"mon": "sun", "tue": "mon", "wed": "tue", "thu": "wed", "fri": "thu", "sat": "fri", "sun": "sat"}

deny contains {"code": "maintenance_window", "message": msg} if {
	caps.maintenance_window_required
	some t in input.times.local
	not in_any_window(t)
	msg := sprintf(
		"%s local time %s %s is outside every maintenance window (risk class %s)",
		[t.time_zone, t.weekday, t.time, risk_class],
	)
}

deny contains {"code": "maintenance_window", "message": msg} if {
	caps.maintenance_window_required
	has_key(input, "times")
	count([t | some t in input.times.local]) == 0
	msg := "a maintenance window applies but the input carries no local times"
}

in_any_window(t) if {
	some w in data.policy_data.maintenance_windows
	in_window(w, t)
}

in_window(w, t) if {
	w.start_minute <= w.end_minute
	t.weekday in w.days
	t.minute_of_day >= w.start_minute
	t.minute_of_day < w.end_minute
}

# A window crossing midnight belongs to the day it starts on.
in_window(w, t) if {
	w.start_minute > w.end_minute
	t.weekday in w.days
	t.minute_of_day >= w.start_minute
}

in_window(w, t) if {
	w.start_minute > w.end_minute
	previous_day[t.weekday] in w.days
	t.minute_of_day < w.end_minute
}
