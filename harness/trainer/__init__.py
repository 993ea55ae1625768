"""The bot trainer's tools: intent import and checks, provenance, mining, threshold sweep, NLU experiments, retrain."""
