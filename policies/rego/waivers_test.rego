package fleetbrain_test

test_waiver_by_policy_admin if matches("waiver_by_policy_admin")

test_waiver_by_planner if matches("waiver_by_planner")

test_waiver_by_operator if matches("waiver_by_operator")

test_waiver_of_protected_path if matches("waiver_of_protected_path")

test_waiver_without_reason if matches("waiver_without_reason")
