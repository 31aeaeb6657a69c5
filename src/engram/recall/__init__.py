"""Recall: hybrid search, ranking and usage statistics."""
