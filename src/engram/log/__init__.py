"""The event log: events, per-device hash chains, projection, upcasting, export."""
