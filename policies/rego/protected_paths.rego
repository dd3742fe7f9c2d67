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
	protected_may_be_touched
	some p, key in path_keys
	some i, prefix in lower_protected
	touches(key, prefix)
	msg := sprintf("%s is under %s, which no change may touch", [p, protected_prefixes[i]])
}

touches(key, prefix) if startswith(key, prefix)

# An ancestor counts too (deleting Device.LocalAgent. removes its controllers).
touches(key, prefix) if startswith(prefix, key)

# A key starting with a protected prefix has it among its prefixes.
protected_may_be_touched if {
	some prefix in lower_protected
	key_may_start_with(prefix)
}

# A key a protected prefix starts with (an ancestor) is one of these; protected_paths_test checks
# they are exactly the dot-ended prefixes of lower_protected.
protected_may_be_touched if {
	some a in protected_ancestors
	key_may_be(a)
}

protected_ancestors := [
	"device.",
	"device.managementserver.",
	"device.localagent.",
	"device.localagent.controllertrust.",
	"device.localagent.controller.",
]

# Plans are bound to exact paths; search expressions and wildcards are resolved before policy.
wildcard_chars := ["*", "[", "{", "]", "}"]

deny contains {"code": "unresolved_path", "message": msg, "path": p} if {
	some ch in wildcard_chars
	path_may_contain(ch)
	some p in all_paths
	contains(p, ch)
	msg := sprintf("%s is a wildcard or search path; resolve it to instance paths first", [p])
}

secret_words := ["password", "passphrase", "presharedkey", "secret", "wepkey"]

deny contains {"code": "sensitive_path", "message": msg, "path": p.path} if {
	some_name_may_be_secret
	some p in parameters
	secret_param(path_keys[p.path])
	not secrets_granted
	msg := sprintf("%s is a credential; only a secrets_admin may set it, with sensitive_allowed", [p.path])
}

# Distinct names, not every parameter: many parameters share a name (SSID, Channel).
some_name_may_be_secret if {
	some name in parameter_names
	some w in secret_words
	contains(name, w)
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

remote_access_prefixes := ["device.userinterface.remoteaccess.", "device.nat.portmapping.", "device.firewall.enable."]

remote_access_may_be_touched if {
	some prefix in remote_access_prefixes
	key_may_start_with(prefix)
}

deny contains {"code": "remote_access", "message": msg, "path": p.path} if {
	remote_access_may_be_touched
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

# Guards for the per-path checks above, from the derived facts (see input.rego): one lookup tells
# that no path can match, so the check over every path is skipped. A guard may hold without a
# match, never fail with one; without the facts each guard holds and every check runs.

# Some key starts with prefix (a dot-ended, lowered prefix).
key_may_start_with(prefix) if derived.key_prefixes[prefix]

key_may_start_with(_) if not derived.key_prefixes

# Some key is key.
key_may_be(key) if derived.keys[key]

key_may_be(_) if not derived.keys

# Some path contains the character ch.
path_may_contain(ch) if derived.chars[ch]

path_may_contain(_) if not derived.chars

# The parameters' names (last segment of the key), each once.
parameter_names := {name | some name, _ in derived.parameter_names} if derived.parameter_names

else := {name | some p in parameters; parts := split(path_keys[p.path], "."); name := parts[count(parts) - 2]}
