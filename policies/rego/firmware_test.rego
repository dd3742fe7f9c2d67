package fleetbrain_test

test_firmware_campaign_ok if matches("firmware_campaign_ok")

test_firmware_unknown_version if matches("firmware_unknown_version")

test_firmware_draft_image if matches("firmware_draft_image")

test_firmware_checksum_mismatch if matches("firmware_checksum_mismatch")

test_firmware_url_mismatch if matches("firmware_url_mismatch")

test_firmware_wrong_model if matches("firmware_wrong_model")

test_firmware_bad_upgrade_path if matches("firmware_bad_upgrade_path")

test_firmware_no_devices if matches("firmware_no_devices")
