"""Issue 22's campaigns (crash, power loss, faults, hostile input) share this package:

- ``invariants``: the checker every campaign runs after each kill, cut or fault;
- ``workload``: a seeded mix of real scans to drop;
- ``harness``: the real daemon as a subprocess, READY over a notify socket, kills.

Not a conftest: test modules import ``campaign.invariants`` etc. (``tests/`` is on the path).
"""
