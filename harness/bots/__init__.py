"""Seam 1: the bots the harness can measure (base: Bot, BotTurn; kinds: the registry), and the reference bot."""
