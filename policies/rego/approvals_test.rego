package fleetbrain_test

test_planner_proposal_needs_human if matches("planner_proposal_needs_human")

test_approve_by_other_approver if matches("approve_by_other_approver")

test_approve_by_planner if matches("approve_by_planner")

test_approve_by_planner_id if matches("approve_by_planner_id")

test_approve_own_change if matches("approve_own_change")

test_approve_without_role if matches("approve_without_role")
