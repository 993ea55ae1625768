"""The turns the reference-bot benchmarks send (shared by bot_bench.py in the harness environment and
bot_profile.py in the bot environment, so this module imports nothing)."""

# Four-turn self-service conversations that never hand off, so every turn does the full work.
CONVERSATION = [
    "hi there",
    "what's my balance",
    "how much is 100 pounds in euros",
    "what time do branches open on saturday",
]
# A conversation that hands off to the fraud queue on its second turn (a ticket in the human-queue store).
FRAUD_CONVERSATION = [
    "hello, hope someone can help me",
    "I've just seen three payments to a betting site and I don't gamble",
]
