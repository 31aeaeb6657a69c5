"""Wrappers of foreign APIs that add Engram's memory to them."""
