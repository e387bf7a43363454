"""The bridges of the suite's fresh daemons (tests/engines.py BRIDGES): daemons that build at
the same time allocate their containers' addresses each on its own bridge, so no two subnets may
overlap, and every bridge a test starts a daemon on has its address there."""

from __future__ import annotations

import ipaddress
import itertools

from tests.codebuild.test_batch_graph_runs import SLOTS
from tests.engine.test_remote_engine import TLS26_BRIDGE, TLS_BRIDGE
from tests.engines import BRIDGES, FRESH_BRIDGE


def test_bridge_subnets_do_not_overlap() -> None:
    subnets = {name: ipaddress.ip_interface(cidr).network for name, cidr in BRIDGES.items()}
    for (one, a), (other, b) in itertools.combinations(subnets.items(), 2):
        assert not a.overlaps(b), f"{one} ({a}) overlaps {other} ({b})"


def test_every_bridge_a_test_uses_has_an_address() -> None:
    used = {FRESH_BRIDGE, TLS_BRIDGE, TLS26_BRIDGE, *SLOTS}
    assert used <= BRIDGES.keys(), used - BRIDGES.keys()
    assert len(used) == len(BRIDGES)
