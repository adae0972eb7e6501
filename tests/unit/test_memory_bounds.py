"""What a long-running daemon keeps per thing it meets stays bounded (issue #8): each test
meets more things than the bound and checks that what is kept stops at it, and that nothing
it must not forget is forgotten."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.config import MonitorSettings
from monitor.errors import FetchError
from monitor.fetch.http import HttpClient
from tests.servers import LocalSite


@pytest.fixture
def web(tmp_path: Path) -> Iterator[LocalSite]:
    with LocalSite(tmp_path) as site:
        yield site


def settings(tmp_path: Path) -> MonitorSettings:
    return MonitorSettings(state_dir=tmp_path, rules_dir=tmp_path, templates_dir=tmp_path)


def closed_ports(count: int) -> list[int]:
    """Ports on 127.0.0.1 that nothing listens on: each one a host that refuses at once."""
    probes = [socket.create_server(("127.0.0.1", 0)) for _ in range(count)]
    ports = [int(probe.getsockname()[1]) for probe in probes]
    for probe in probes:
        probe.close()
    return ports


async def meet(client: HttpClient, ports: list[int]) -> None:
    """One request to each host (robots.txt and the page: both refused)."""
    for port in ports:
        with pytest.raises(FetchError, match="cannot connect"):
            await client.get(f"http://127.0.0.1:{port}/news.xml", where=f"port {port}")


async def test_the_http_client_forgets_idle_hosts_beyond_its_bound(tmp_path: Path) -> None:
    async with HttpClient(settings(tmp_path), host_delay=0, max_hosts=8) as client:
        await meet(client, closed_ports(20))
        assert 1 <= client.hosts <= 8
        assert "hosts=" in repr(client)


async def test_a_host_waiting_out_a_retry_after_is_not_forgotten(
    web: LocalSite, tmp_path: Path
) -> None:
    web.route("busy.xml", status=429, headers={"Retry-After": "3600"})
    async with HttpClient(settings(tmp_path), host_delay=0, max_hosts=8) as client:
        with pytest.raises(FetchError, match="retry after 3600s"):
            await client.get(web.url("busy.xml"), where="busy")
        await meet(client, closed_ports(20))
        # Still remembered: refused here, without a request to the server.
        with pytest.raises(FetchError, match="asked for no requests"):
            await client.get(web.url("busy.xml"), where="busy")
    assert len(web.hits("busy.xml")) == 1
