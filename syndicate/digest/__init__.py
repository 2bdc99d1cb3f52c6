"""Digests: compile (what is new for whom), render (Jinja + CSS inlining, then personalised
in the bytes), outbox (one row per digest and per recipient), messages (a delivery's bytes),
worker (claims deliveries and hands them to the mailer), send (the CLI's entry points)."""
