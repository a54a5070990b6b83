"""Which version of the decision core this is, logged beside every event it decides.

A replay re-decides the log with the current core; a decision logged by an older core is
compared as that core made it (`handoff.audit.versions`), so a log written before an upgrade
still verifies. Raise it whenever the same input and view give different decisions.

1. Contract v1: explanations list every member of the team, without counts.
2. Routing v1.1 (issue 14): bounded explanations with counts; skills, priority, longest idle,
   last assignee, `assignee_unavailable`.
3. A run queued by an input is served in the same decision when a later step of it frees
   someone it waits for (another workflow moving the contact away). Version 2 left it
   waiting for the next input that freed someone; `decide(..., core_version=2)` still does,
   so a log it wrote re-decides as it was decided.
"""

__all__ = ["CORE_VERSION"]

CORE_VERSION = 3
