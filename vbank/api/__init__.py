"""The HTTP API, the signaling WebSocket and the pages: thin translators around services."""
