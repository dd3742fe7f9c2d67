# Fleetbrain's single policy decision. Every proposal, approval and execution step asks
# data.fleetbrain.decision; nothing else in the system decides whether a change may proceed.
package fleetbrain

risk_order := {"low": 0, "medium": 1, "high": 2, "critical": 3}

risk_names := ["low", "medium", "high", "critical"]

decision := {
	"allow": allow,
	"deny": sort(effective_deny),
	"risk_class": risk_class,
	"require_approvals": require_approvals,
	"constraints": constraints,
	"risk_factors": sort(risk_factors),
}

# Fail closed: allow only when the decision could be formed and nothing denies.
default allow := false

allow if {
	input_complete
	count(effective_deny) == 0
	caps
}

# Denies that a valid waiver removed are reported in constraints.waived instead.
effective_deny contains d if {
	some d in deny
	not d.code in waived_codes
}

effective_deny contains d if {
	some d in waiver_deny
}

# Computed from paths, values and cohort; a proposer's requested class is one more factor, so it
# can raise the class but never lower it.
risk_class := risk_names[max({0} | {risk_order[f.class] | some f in risk_factors})]

# The policy data document (catalogue, windows, caps) for the decided class; undefined if absent.
caps := data.policy_data.risk_classes[risk_class]

deny contains {"code": "policy_data_missing", "message": msg} if {
	not caps
	msg := sprintf("policy data has no caps for risk class %s", [risk_class])
}
