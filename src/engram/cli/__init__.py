"""The `engram` command."""
