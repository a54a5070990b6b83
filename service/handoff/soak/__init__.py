"""`handoff soak`: the service under a long mixed stream while faults are injected, then an
account of every input and output: nothing lost, nothing decided twice.

The soak starts its own embedded broker and PostgreSQL (under its run directory, whatever
`HANDOFF_KAFKA_BOOTSTRAP` / `HANDOFF_DATABASE_URL` say), two or three `handoff run`
processes in one consumer group, and plays the demo's simulated days (`handoff.demo.traffic`)
through them at a paced rate, while it kills, freezes and restarts things at seeded random
moments. Modules, one job each:

- `options`: the command line;
- `clock`: the wall clock the soak compares with the event log, and its stamped lines;
- `traffic`: the days of traffic and the paced sender that remembers every input it sent;
- `instances`: the `handoff run` processes (start, ready, kill -9, freeze, thaw, stop);
- `faults`: the seeded schedule of faults and their injection;
- `outputs`: a reader of every record on the output topics, from the beginning;
- `ledger`: what the event log holds (during the drain and at the end);
- `report`: the account (lost, decided twice, re-sent, delays) and its evidence;
- `run`: the whole soak, its servers and processes stopped on every way out.
"""
