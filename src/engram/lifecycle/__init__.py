"""Lifecycle: tiers, consolidation, maintenance and their policy."""
