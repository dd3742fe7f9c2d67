# Paths no change may touch, secrets that need an explicit grant, and remote-access enablement.
package fleetbrain

# The ACS / controller relationship: changing it can hand the device to someone else.
protected_prefixes := [
	"Device.ManagementServer.",
	"Device.LocalAgent.ControllerTrust.",
	"Device.LocalAgent.Controller.",
]

# Compared case-insensitively, on each path lowered once and given a trailing dot.
lower_protected := [lower(p) | some p in protected_prefixes]

path_keys := {p: with_dot(lower(p)) | some p in all_paths}

deny contains {"code": "protected_path", "message": msg, "path": p} if {
	some p, key in path_keys
	some i, prefix in lower_protected
	touches(key, prefix)
	msg := sprintf("%s is under %s, which no change may touch", [p, protected_prefixes[i]])
}

touches(key, prefix) if startswith(key, prefix)

# An ancestor counts too (deleting Device.LocalAgent. removes its controllers).
touches(key, prefix) if startswith(prefix, key)

# Plans are bound to exact paths; search expressions and wildcards are resolved before policy.
deny contains {"code": "unresolved_path", "message": msg, "path": p} if {
	some p in all_paths
	some ch in ["*", "[", "{", "]", "}"]
	contains(p, ch)
	msg := sprintf("%s is a wildcard or search path; resolve it to instance paths first", [p])
}

secret_words := ["password", "passphrase", "presharedkey", "secret", "wepkey"]

deny contains {"code": "sensitive_path", "message": msg, "path": p.path} if {
	some p in parameters
	secret_param(path_keys[p.path])
	not secrets_granted
	msg := sprintf("%s is a credential; only a secrets_admin may set it, with sensitive_allowed", [p.path])
}

# The parameter's name (last segment) names a credential; the cheap whole-path test goes first.
secret_param(key) if {
	some w in secret_words
	contains(key, w)
	parts := split(key, ".")
	contains(parts[count(parts) - 2], w)
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
	opens_remote_access(path_keys[p.path], p.value)
	msg := sprintf("%s=%s would open remote access to the device", [p.path, json.marshal(p.value)])
}

deny contains {"code": "remote_access", "message": msg, "path": p} if {
	some p in add_objects
	startswith(path_keys[p], "device.nat.portmapping.")
	msg := sprintf("adding %s would open an inbound port", [p])
}

# Anything under RemoteAccess except switching it off.
opens_remote_access(key, value) if {
	startswith(key, "device.userinterface.remoteaccess.")
	not remote_access_off(key, value)
}

opens_remote_access(key, value) if {
	startswith(key, "device.nat.portmapping.")
	endswith(key, ".enable.")
	not falsy(value)
}

opens_remote_access(key, value) if {
	key == "device.firewall.enable."
	falsy(value)
}

remote_access_off(key, value) if {
	key == "device.userinterface.remoteaccess.enable."
	falsy(value)
}
