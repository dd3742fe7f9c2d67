package fleetbrain_test

test_validation_errors if matches("validation_errors")

test_validation_unknown_model if matches("validation_unknown_model")

test_validation_known_models if matches("validation_known_models")

test_validation_fallback_schema if matches("validation_fallback_schema")
