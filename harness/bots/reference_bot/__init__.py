"""Train and serve the reference bot (Rasa server + action server) and build its NLU data from intents/."""
