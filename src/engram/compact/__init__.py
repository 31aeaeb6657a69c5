"""Concept compaction: related memories clustered (`cluster`), named and summarised
(`summary`), matched against the concepts already written (`plan`), and written as `concept`
memories derived from their members (`run`). Importing this package costs nothing: the
clustering library (scikit-learn, the `compact` extra) is imported when a run clusters.
"""
