# Risk class factors. Longest matching prefix decides a path's class; unknown paths are medium.
package fleetbrain

path_classes := [
	{"prefix": "Device.WiFi.", "class": "low"},
	{"prefix": "Device.Time.", "class": "low"},
	{"prefix": "Device.UserInterface.", "class": "low"},
	{"prefix": "Device.DeviceInfo.", "class": "medium"},
	{"prefix": "Device.Users.", "class": "medium"},
	{"prefix": "Device.Ethernet.", "class": "medium"},
	{"prefix": "Device.Hosts.", "class": "low"},
	{"prefix": "Device.DHCPv4.", "class": "high"},
	{"prefix": "Device.DHCPv6.", "class": "high"},
	{"prefix": "Device.DNS.", "class": "high"},
	{"prefix": "Device.IP.", "class": "high"},
	{"prefix": "Device.Routing.", "class": "high"},
	{"prefix": "Device.Firewall.", "class": "high"},
	{"prefix": "Device.NAT.", "class": "high"},
	{"prefix": "Device.PPP.", "class": "critical"},
	{"prefix": "Device.Optical.", "class": "critical"},
	{"prefix": "Device.DSL.", "class": "critical"},
	{"prefix": "Device.X_", "class": "high"},
]

# Switching these off can cut a device off from management: always critical.
uplink_prefixes := [
	"Device.IP.Interface.",
	"Device.PPP.Interface.",
	"Device.Optical.Interface.",
	"Device.Ethernet.Interface.",
	"Device.DSL.Line.",
]

path_class(p) := pc[count(pc) - 1].class if {
	pc := [c | some c in sort_by_prefix_len; startswith(p, c.prefix)]
	count(pc) > 0
}

else := "medium"

# Ascending prefix length, so the last match is the most specific one.
sort_by_prefix_len := [c |
	some n in sort({count(x.prefix) | some x in path_classes})
	some c in path_classes
	count(c.prefix) == n
]

risk_factors contains {"source": "path", "class": path_class(p), "detail": p} if {
	some p in all_paths
	path_class(p) != "low"
}

risk_factors contains {"source": "value", "class": "critical", "detail": msg} if {
	some p in parameters
	endswith(p.path, ".Enable")
	falsy(p.value)
	some u in uplink_prefixes
	startswith(p.path, u)
	msg := sprintf("%s=false can cut the device off", [p.path])
}

risk_factors contains {"source": "object", "class": "critical", "detail": msg} if {
	some p in delete_objects
	some u in uplink_prefixes
	startswith(with_dot(p), u)
	msg := sprintf("deleting %s can cut the device off", [p])
}

risk_factors contains {"source": "object", "class": "medium", "detail": msg} if {
	some p in delete_objects
	msg := sprintf("deletes %s", [p])
}

risk_factors contains {"source": "firmware", "class": "high", "detail": "firmware campaign"} if {
	input.change.kind == "firmware"
}

# Big cohorts raise the class: half the fleet or more is high, 50 000 devices or more medium.
risk_factors contains {"source": "cohort", "class": "high", "detail": msg} if {
	fleet_share >= 0.5
	msg := sprintf("cohort is %d%% of the fleet", [round(fleet_share * 100)])
}

risk_factors contains {"source": "cohort", "class": "medium", "detail": msg} if {
	input.cohort.size >= 50000
	msg := sprintf("cohort has %d devices", [input.cohort.size])
}

risk_factors contains {"source": "requested", "class": c, "detail": "requested by the proposer"} if {
	c := input.requested_risk_class
	risk_order[c]
}

fleet_share := input.cohort.size / input.cohort.fleet_size if {
	valid_cohort
}

fleet_wide if fleet_share >= 0.5
