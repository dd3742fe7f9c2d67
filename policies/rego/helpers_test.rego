# Shared test helpers: every case's input and expectation live in policies/testdata/cases.json,
# the same file the TypeScript parity test evaluates through wasm and an OPA server.
package fleetbrain_test

import data.fleetbrain

case_data(name) := object.get(data.testdata.cases[name], "policy_data", data.testdata.policy_data)

decide(name) := d if {
	d := fleetbrain.decision with input as data.testdata.cases[name].input
		with data.policy_data as case_data(name)
}

# The decision has exactly the expected allow and deny codes, and the expected class,
# approvals and waivers where the case names them.
matches(name) if {
	c := data.testdata.cases[name]
	d := decide(name)
	d.allow == c.expect.allow
	{x.code | some x in d.deny} == {x | some x in c.expect.deny_codes}
	object.get(c.expect, "risk_class", d.risk_class) == d.risk_class
	object.get(c.expect, "require_approvals", d.require_approvals) == d.require_approvals
	object.get(c.expect, "waived", object.get(d.constraints, "waived", [])) == object.get(d.constraints, "waived", [])
}

deny_for(name, code) := [x | some x in decide(name).deny; x.code == code]

# The case's input with what the engine adds to it (engine_facts, derived by prepared-input.ts).
decide_with_engine_facts(name) := d if {
	c := data.testdata.cases[name]
	d := fleetbrain.decision with input as object.union(c.input, c.engine_facts)
		with data.policy_data as case_data(name)
}
