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

# Every key after a newline, in one string: one `contains` over it tells whether any key contains a
# text (or, with the newline, starts with it), so the per-path rules below only run when one might
# match. These guards can be true without a match, never false with one.
keys_text := concat("\n", array.concat([""], [key | some key in path_keys]))

any_key_contains(s) if contains(keys_text, s)

any_key_starts_with(prefix) if contains(keys_text, concat("", ["\n", prefix]))

deny contains {"code": "protected_path", "message": msg, "path": p} if {
	protected_touched
	some p, key in path_keys
	some i, prefix in lower_protected
	touches(key, prefix)
	msg := sprintf("%s is under %s, which no change may touch", [p, protected_prefixes[i]])
}

touches(key, prefix) if startswith(key, prefix)

# An ancestor counts too (deleting Device.LocalAgent. removes its controllers).
touches(key, prefix) if startswith(prefix, key)

protected_touched if {
	some prefix in lower_protected
	any_key_starts_with(prefix)
}

# A key ends with a dot, so a key that starts a protected prefix is one of its dot-ended ancestors
# (protected_paths_test checks this set against protected_prefixes).
protected_touched if {
	some key in path_keys
	key in protected_ancestors
}

protected_ancestors := {
	"device.",
	"device.managementserver.",
	"device.localagent.",
	"device.localagent.controllertrust.",
	"device.localagent.controller.",
}

# Plans are bound to exact paths; search expressions and wildcards are resolved before policy.
wildcard_chars := ["*", "[", "{", "]", "}"]

# lower() and the added dot leave these characters alone, so the keys show them as the paths do.
any_wildcard if {
	some ch in wildcard_chars
	any_key_contains(ch)
}

deny contains {"code": "unresolved_path", "message": msg, "path": p} if {
	any_wildcard
	some p in all_paths
	some ch in wildcard_chars
	contains(p, ch)
	msg := sprintf("%s is a wildcard or search path; resolve it to instance paths first", [p])
}

secret_words := ["password", "passphrase", "presharedkey", "secret", "wepkey"]

any_secret_word if {
	some w in secret_words
	any_key_contains(w)
}

deny contains {"code": "sensitive_path", "message": msg, "path": p.path} if {
	any_secret_word
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
	remote_access_touched
	some p in parameters
	opens_remote_access(path_keys[p.path], p.value)
	msg := sprintf("%s=%s would open remote access to the device", [p.path, json.marshal(p.value)])
}

deny contains {"code": "remote_access", "message": msg, "path": p} if {
	some p in add_objects
	startswith(path_keys[p], "device.nat.portmapping.")
	msg := sprintf("adding %s would open an inbound port", [p])
}

remote_access_touched if any_key_starts_with("device.userinterface.remoteaccess.")

remote_access_touched if any_key_starts_with("device.nat.portmapping.")

remote_access_touched if any_key_starts_with("device.firewall.enable.")

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
