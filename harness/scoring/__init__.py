"""Scoring: the KPIs (metrics/), reply checks judged from the turn table, the scorecard and ScoredRun."""
