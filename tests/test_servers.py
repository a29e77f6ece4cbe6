"""The test servers' own helpers."""

from __future__ import annotations

import socket

from tests.servers import ephemeral_ports, free_port


def test_free_ports_are_bindable_and_never_ones_the_kernel_hands_out_itself() -> None:
    ports = {free_port() for _ in range(20)}
    assert not ports & set(ephemeral_ports())
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
