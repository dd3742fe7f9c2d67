# Firmware only from the catalogue: approved, checksum pinned, and only on (model, from-version)
# pairs the catalogue lists.
package fleetbrain

fw := input.change.firmware if input.change.kind == "firmware"

catalogue_matches := [e |
	some e in data.policy_data.firmware_catalogue
	e.version == fw.version
]

# Versions are unique in the table; a duplicate would make the entry ambiguous, so none is used.
catalogue_entry := catalogue_matches[0] if count(catalogue_matches) == 1

deny contains {"code": "firmware_not_in_catalogue", "message": msg} if {
	fw
	not catalogue_entry
	msg := sprintf("firmware %s is not in the catalogue", [json.marshal(fw.version)])
}

deny contains {"code": "firmware_not_approved", "message": msg} if {
	catalogue_entry.status != "approved"
	msg := sprintf("firmware %s has catalogue status %s", [catalogue_entry.version, catalogue_entry.status])
}

deny contains {"code": "firmware_checksum", "message": msg} if {
	catalogue_entry
	not checksum_pinned
	msg := sprintf("firmware %s: the campaign's checksum does not match the catalogue's", [catalogue_entry.version])
}

checksum_pinned if {
	is_string(catalogue_entry.checksum)
	catalogue_entry.checksum != ""
	lower(fw.checksum) == lower(catalogue_entry.checksum)
}

deny contains {"code": "firmware_url", "message": msg} if {
	catalogue_entry
	fw.url != catalogue_entry.url
	msg := sprintf("firmware %s: the campaign's URL is not the catalogue's", [catalogue_entry.version])
}

deny contains {"code": "firmware_model_not_allowed", "message": msg} if {
	catalogue_entry
	some d in input.devices
	not d.model in catalogue_entry.models
	msg := sprintf("firmware %s is not for model %s", [catalogue_entry.version, d.model])
}

deny contains {"code": "firmware_upgrade_path", "message": msg} if {
	catalogue_entry
	some d in input.devices
	d.firmware_version != catalogue_entry.version
	not d.firmware_version in catalogue_entry.allowed_from_versions
	msg := sprintf(
		"firmware %s may not be installed over %s (model %s)",
		[catalogue_entry.version, d.firmware_version, d.model],
	)
}

deny contains {"code": "firmware_devices_missing", "message": msg} if {
	fw
	count([d | some d in input.devices]) == 0
	msg := "a firmware campaign must list the device models and versions it targets"
}
