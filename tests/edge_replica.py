"""A second edge process on a stack's database and issuer: a replica behind a load balancer, for the tests of
what every edge process must share (single-use assertions, DPoP proofs, pushed requests)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from stack.ports import Ports
from stack.process import ManagedProcess
from stack.supervisor import Stack
from stack.web import wait_http


@contextlib.asynccontextmanager
async def second_edge(stack: Stack, name: str) -> AsyncIterator[str]:
    """The base URL of another edge process named ``name`` (its log beside the stack's), stopped on exit."""
    first = stack.services["edge"]
    port = Ports.one()
    env = {**(first.env or {}), "DINHDANH_LISTEN": f"127.0.0.1:{port}", "DINHDANH_METRICS_LISTEN": ""}
    process = ManagedProcess(name, first.argv, stack.var / "logs" / f"{name}.log", env)
    process.start()
    base = f"http://localhost:{port}"
    try:
        await wait_http(process, f"{base}/.well-known/openid-configuration")
        yield base
    finally:
        process.stop()
