"""The cohort format: layout names, metadata, storage, config, errors and ``open_cohort``."""
