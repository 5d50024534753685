"""HTTP and WebSocket interfaces."""
