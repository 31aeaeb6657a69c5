"""The scale-out backend: PostgreSQL with pgvector."""
