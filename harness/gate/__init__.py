"""The release gate: decide from a run (and its baseline) whether a bot may ship."""
