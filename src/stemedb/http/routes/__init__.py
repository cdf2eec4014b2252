"""HTTP routes: each parses, calls one engine method, and formats."""
