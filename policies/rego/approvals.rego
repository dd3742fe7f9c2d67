# Required approvals, and who may approve: never the proposer, never the planner.
package fleetbrain

# Two approvers whenever half the fleet or more is affected.
fleet_wide_approvals := 2

approval_floors contains caps.approvals

approval_floors contains fleet_wide_approvals if fleet_wide

# Nothing the planner proposes reaches a device without a human.
approval_floors contains 1 if is_planner(input.proposer)

approval_floors contains 2 if count(waived_codes) > 0

# Without caps nothing is allowed anyway; report the strictest requirement.
approval_floors contains 2 if not caps

require_approvals := max({0} | approval_floors)

deny contains {"code": "approver_is_planner", "message": msg} if {
	input.action == "approve"
	is_planner(input.actor)
	msg := sprintf("%s is the planner and can never approve", [input.actor.id])
}

deny contains {"code": "approver_is_proposer", "message": msg} if {
	input.action == "approve"
	input.actor.id == input.proposer.id
	msg := sprintf("%s proposed this change and cannot approve it", [input.actor.id])
}

deny contains {"code": "approver_lacks_role", "message": msg} if {
	input.action == "approve"
	not "approver" in input.actor.roles
	msg := sprintf("%s does not hold the approver role", [input.actor.id])
}
