"""Seam 2: where turn records come from (replay of eval sets through a Bot)."""
