"""Getting drops in: the sources, finding and reading drops, staging (typing, validation,
quarantine), source mappings and the sample data."""
