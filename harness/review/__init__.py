"""QA-analyst review of bot decisions."""
