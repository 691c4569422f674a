"""Where rows live: the Parquet store, the staged history a day reads, the carried ticket
state, the warehouse, the table registry and the BI views."""
