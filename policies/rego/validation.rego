# The TR-181 validation summary: only a clean validation against the device's own model counts.
package fleetbrain

deny contains {"code": "validation_failed", "message": msg} if {
	has_key(input, "validation")
	not validation_clean
	msg := sprintf("TR-181 validation reported %d error(s)", [object.get(input.validation, "errors", 0)])
}

validation_clean if {
	input.validation.ok == true
	input.validation.errors == 0
}

deny contains {"code": "unknown_model", "message": msg} if {
	input.validation.unknown_models > 0
	msg := sprintf(
		"%d device model(s) have no discovered data model; writes wait for discovery",
		[input.validation.unknown_models],
	)
}

deny contains {"code": "fallback_schema", "message": msg} if {
	input.validation.fallback_schema == true
	msg := "validation used a fallback schema, which never authorises a write"
}
