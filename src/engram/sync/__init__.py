"""Sync: replication of the event log between stores, offline-first and peer to peer."""
