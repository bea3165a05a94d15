"""Free ports and taken ones (servers/ports.py), the one home of both."""

from __future__ import annotations

import socket

from pytest_flmigrate.servers import ports


def test_a_free_port_can_be_bound_and_is_taken_while_something_listens():
    port = ports.free_port()
    assert not ports.in_use(port)
    with socket.socket() as listener:
        listener.bind((ports.HOST, port))
        listener.listen()
        assert ports.in_use(port)
    assert not ports.in_use(port)
