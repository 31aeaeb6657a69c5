"""Capture: the one writer of memories (add, add_many, turns)."""
