"""Production KPIs: the label-free KPIs of real conversations (kpis.md, "Label-free KPIs for production
conversations") per window, day and week, with intervals, computed by a dataframe engine (Ibis over DuckDB or
Spark) or in memory (pandas)."""
