# Constraints handed to the rollout: the caps that applied, and what was waived.
package fleetbrain

constraints := {
	"max_cohort_size": caps.max_cohort_size,
	"max_fleet_share": caps.max_fleet_share,
	"max_topology_share": caps.max_topology_share,
	"max_first_wave_size": caps.max_first_wave_size,
	"min_first_wave_size": min_first_wave,
	"min_waves": caps.min_waves,
	"brick_rate_threshold": {"min": caps.brick_rate_min, "max": caps.brick_rate_max},
	"maintenance_window_required": caps.maintenance_window_required,
	"fleet_wide": fleet_wide_flag,
	"waived": sort(waived_codes),
} if {
	caps
} else := {}

default fleet_wide_flag := false

fleet_wide_flag if fleet_wide
