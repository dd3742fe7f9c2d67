# Risk class factors. Longest matching prefix decides a path's class; unknown paths are medium.
package fleetbrain

# Keyed by the object under Device. (Device.IP.Interface.1.Enable -> "IP"); vendor objects (X_...)
# are high. A map lookup per path keeps the decision cheap for large changes.
object_classes := {
	"WiFi": "low",
	"Time": "low",
	"UserInterface": "low",
	"Hosts": "low",
	"DeviceInfo": "medium",
	"Users": "medium",
	"Ethernet": "medium",
	"DHCPv4": "high",
	"DHCPv6": "high",
	"DNS": "high",
	"IP": "high",
	"Routing": "high",
	"Firewall": "high",
	"NAT": "high",
	"PPP": "critical",
	"Optical": "critical",
	"DSL": "critical",
}

# Switching these off can cut a device off from management: always critical.
uplink_prefixes := [
	"Device.IP.Interface.",
	"Device.PPP.Interface.",
	"Device.Optical.Interface.",
	"Device.Ethernet.Interface.",
	"Device.DSL.Line.",
]

object_class(o) := object_classes[o]

object_class(o) := "high" if startswith(o, "X_")

# A path's class is its object's; a path outside Device. (object "") or under an unlisted object is
# medium. Paths are taken object by object, so an object's class is looked up once.
risk_factors contains {"source": "path", "class": c, "detail": p} if {
	some o, paths in paths_by_object
	c := object_path_class(o)
	c != "low"
	some p in paths
}

object_path_class(o) := c if c := object_class(o)

else := "medium"

# Every path (parameters, added and deleted objects) under its object: Device.IP.Interface.1.Enable
# under "IP", a path not under Device. under "". The engine derives the same (derived facts, see
# input.rego); without them it is computed here.
paths_by_object := derived.paths_by_object if has_derived

else := {o: [p | some p in all_paths; path_object(p) == o] | some q in all_paths; o := path_object(q)}

path_object(p) := parts[1] if {
	parts := split(p, ".")
	parts[0] == "Device"
} else := ""

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
