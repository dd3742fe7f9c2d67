package fleetbrain_test

import data.fleetbrain

test_protected_acs_url if matches("protected_acs_url")

test_protected_controller_trust_delete if matches("protected_controller_trust_delete")

test_protected_controller_param if matches("protected_controller_param")

test_protected_ancestor_delete if matches("protected_ancestor_delete")

test_protected_case_variant if matches("protected_case_variant")

test_localagent_other_allowed if matches("localagent_other_allowed")

test_wildcard_path if matches("wildcard_path")

test_concrete_path if matches("concrete_path")

test_wifi_passphrase_denied if matches("wifi_passphrase_denied")

test_user_password_denied if matches("user_password_denied")

test_planner_passphrase_denied if matches("planner_passphrase_denied")

test_passphrase_by_secrets_admin if matches("passphrase_by_secrets_admin")

test_remote_access_enable if matches("remote_access_enable")

test_port_mapping_add if matches("port_mapping_add")

test_firewall_disable if matches("firewall_disable")

test_remote_access_disable if matches("remote_access_disable")

test_protected_deny_names_the_path if {
	[d] := deny_for("protected_acs_url", "protected_path")
	d.path == "Device.ManagementServer.URL"
}

test_ancestor_delete_reports_each_protected_subtree if {
	count(deny_for("protected_ancestor_delete", "protected_path")) == 2
}

test_port_mapping_enable if matches("port_mapping_enable")

test_protected_ancestors_are_the_prefixes_dot_ended_prefixes if {
	computed := {concat("", [concat(".", array.slice(parts, 0, n)), "."]) |
		some prefix in fleetbrain.lower_protected
		parts := split(trim_suffix(prefix, "."), ".")
		some n in numbers.range(1, count(parts))
	}
	computed == {a | some a in fleetbrain.protected_ancestors}
}
