"""cx-pipeline: daily customer-experience metrics on Dagster."""
