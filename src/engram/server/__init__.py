"""Engram as a service: REST API, OpenAI-compatible memory proxy, MCP over HTTP, dashboard,
API keys. Needs the `server` extra; importing this package alone costs nothing."""
