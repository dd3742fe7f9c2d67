# Paths no change may touch, secrets that need an explicit grant, and remote-access enablement.
package fleetbrain

# The ACS / controller relationship: changing it can hand the device to someone else.
protected_prefixes := [
	"Device.ManagementServer.",
	"Device.LocalAgent.ControllerTrust.",
	"Device.LocalAgent.Controller.",
]

# Compared case-insensitively; each path is lowered once.
lower_protected := [lower(p) | some p in protected_prefixes]

lowered_paths := {p: lower(p) | some p in all_paths}

secret_words := ["password", "passphrase", "presharedkey", "secret", "wepkey"]

deny contains {"code": "protected_path", "message": msg, "path": p} if {
	some p, lp in lowered_paths
	some i, prefix in lower_protected
	touches(lp, prefix)
	msg := sprintf("%s is under %s, which no change may touch", [p, protected_prefixes[i]])
}

# An ancestor counts too (deleting Device.LocalAgent. removes its controllers).
touches(lp, prefix) if startswith(lp, prefix)

touches(lp, prefix) if startswith(prefix, with_dot(lp))

# Plans are bound to exact paths; search expressions and wildcards are resolved before policy.
deny contains {"code": "unresolved_path", "message": msg, "path": p} if {
	some p in all_paths
	some ch in ["*", "[", "{", "]", "}"]
	contains(p, ch)
	msg := sprintf("%s is a wildcard or search path; resolve it to instance paths first", [p])
}

deny contains {"code": "sensitive_path", "message": msg, "path": p.path} if {
	some p in parameters
	secret_param(p.path)
	not secrets_granted
	msg := sprintf("%s is a credential; only a secrets_admin may set it, with sensitive_allowed", [p.path])
}

secret_param(path) if {
	parts := split(path, ".")
	leaf := lower(parts[count(parts) - 1])
	some w in secret_words
	contains(leaf, w)
}

# Explicit, human, and never the planner.
secrets_granted if {
	input.change.sensitive_allowed == true
	input.proposer.kind == "user"
	"secrets_admin" in input.proposer.roles
	not is_planner(input.proposer)
}

deny contains {"code": "remote_access", "message": msg, "path": p.path} if {
	some p in parameters
	opens_remote_access(p)
	msg := sprintf("%s=%s would open remote access to the device", [p.path, json.marshal(p.value)])
}

deny contains {"code": "remote_access", "message": msg, "path": p} if {
	some p in add_objects
	startswith(lower(with_dot(p)), "device.nat.portmapping.")
	msg := sprintf("adding %s would open an inbound port", [p])
}

# Anything under RemoteAccess except switching it off.
opens_remote_access(p) if {
	startswith(lower(p.path), "device.userinterface.remoteaccess.")
	not remote_access_off(p)
}

opens_remote_access(p) if {
	startswith(lower(p.path), "device.nat.portmapping.")
	endswith(lower(p.path), ".enable")
	not falsy(p.value)
}

opens_remote_access(p) if {
	lower(p.path) == "device.firewall.enable"
	falsy(p.value)
}

remote_access_off(p) if {
	lower(p.path) == "device.userinterface.remoteaccess.enable"
	falsy(p.value)
}
