"""`handoff demo`: a simulated day of inbox traffic played through the real service.

`traffic` makes the day (pure and seeded, reusable by a benchmark), `summary` turns what went
in and what came out into the table and the chart's series, `run` starts the embedded stack
and the service, plays the day in real time and prints what happened.
"""
