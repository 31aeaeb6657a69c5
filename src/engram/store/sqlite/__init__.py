"""The embedded backend: one SQLite file holding the log and its projections."""
