# Shape checks the decision relies on: a malformed input denies instead of being silently allowed.
package fleetbrain

required_keys := ["action", "actor", "proposer", "change", "cohort", "devices", "validation", "times"]

actions := {"propose", "approve", "execute"}

change_kinds := {"parameters", "firmware"}

input_problems contains "input is not an object" if not input_is_object

input_is_object if is_object(input)

input_problems contains msg if {
	is_object(input)
	some k in required_keys
	not has_key(input, k)
	msg := sprintf("input has no %s", [k])
}

input_problems contains msg if {
	has_key(input, "action")
	not input.action in actions
	msg := "input.action must be propose, approve or execute"
}

input_problems contains msg if {
	has_key(input, "change")
	not input.change.kind in change_kinds
	msg := "input.change.kind must be parameters or firmware"
}

input_problems contains msg if {
	input.change.kind == "parameters"
	count(all_paths) == 0
	msg := "the change sets, adds or deletes nothing"
}

input_problems contains msg if {
	input.change.kind == "firmware"
	not has_firmware
	msg := "a firmware campaign needs change.firmware"
}

input_problems contains msg if {
	has_key(input, "cohort")
	not valid_cohort
	msg := "input.cohort needs size <= fleet_size and fleet_size > 0"
}

has_firmware if is_object(input.change.firmware)

input_complete if {
	is_object(input)
	every k in required_keys {
		has_key(input, k)
	}
}

valid_cohort if {
	is_number(input.cohort.size)
	is_number(input.cohort.fleet_size)
	input.cohort.fleet_size > 0
	input.cohort.size >= 0
	input.cohort.size <= input.cohort.fleet_size
}

deny contains {"code": "input_incomplete", "message": msg} if {
	some msg in input_problems
}

# Risk is at its highest when the input cannot be read.
risk_factors contains {"source": "input", "class": "critical", "detail": "input incomplete"} if {
	count(input_problems) > 0
}

risk_factors contains {"source": "input", "class": "critical", "detail": "input incomplete"} if not input_complete

has_key(obj, k) if {
	is_object(obj)
	_ = obj[k]
}

# Facts the engine derives from the change once per plan (deriveChangeFacts in
# policies/prepared-input.ts): paths by object, the characters in paths, lowered keys and their
# prefixes, parameter names. Rules use them to skip per-path checks that cannot match and to group
# paths; each such rule computes the same without them (opa test inputs carry none), and the engine
# tests compare decisions with and without them on every case. decide() refuses an input that
# carries its own.
derived := input.change.derived

has_derived if is_object(derived)

parameters := [p | some p in input.change.parameters]

add_objects := [p | some p in input.change.add_objects]

delete_objects := [p | some p in input.change.delete_objects]

param_paths := {p.path | some p in parameters}

object_paths := {p | some p in add_objects} | {p | some p in delete_objects}

all_paths := param_paths | object_paths

is_planner(a) if "planner" in a.roles

is_planner(a) if a.id in data.policy_data.planner_ids

truthy(v) if v == true

truthy(v) if v == 1

truthy(v) if {
	is_string(v)
	lower(v) in {"true", "1"}
}

falsy(v) if v == false

falsy(v) if v == 0

falsy(v) if {
	is_string(v)
	lower(v) in {"false", "0"}
}

with_dot(p) := p if endswith(p, ".")

else := concat("", [p, "."])
