"""Metric maths on pandas frames and DuckDB SQL: days and rates (core), tickets, surveys,
customers, contacts, business hours. Knows nothing of files or Dagster."""
