# Waivers: a policy_admin may waive a few operational denies (never safety ones) and then needs
# two approvers. The planner can never waive anything.
package fleetbrain

waivable_codes := {
	"maintenance_window",
	"cohort_too_large",
	"fleet_share_too_large",
	"topology_share_too_large",
}

requested_waivers := [w | some w in input.waivers]

waiver_allowed if {
	input.proposer.kind == "user"
	"policy_admin" in input.proposer.roles
	not is_planner(input.proposer)
}

waived_codes contains w.code if {
	waiver_allowed
	some w in requested_waivers
	w.code in waivable_codes
	is_string(w.reason)
	w.reason != ""
}

waiver_deny contains {"code": "planner_cannot_waive", "message": msg} if {
	count(requested_waivers) > 0
	is_planner(input.proposer)
	msg := "the planner cannot waive a policy decision"
}

waiver_deny contains {"code": "waiver_not_permitted", "message": msg} if {
	count(requested_waivers) > 0
	not waiver_allowed
	not is_planner(input.proposer)
	msg := sprintf("%s may not waive policy decisions (needs policy_admin)", [input.proposer.id])
}

waiver_deny contains {"code": "waiver_not_permitted", "message": msg} if {
	waiver_allowed
	some w in requested_waivers
	not w.code in waivable_codes
	msg := sprintf("%s cannot be waived", [json.marshal(w.code)])
}

waiver_deny contains {"code": "waiver_not_permitted", "message": msg} if {
	waiver_allowed
	some w in requested_waivers
	not valid_reason(w)
	msg := "every waiver needs a reason"
}

valid_reason(w) if {
	is_string(w.reason)
	w.reason != ""
}
