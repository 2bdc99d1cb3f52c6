"""Digests: compile (what is new for whom), render (Jinja + CSS inlining), outbox (state)."""
