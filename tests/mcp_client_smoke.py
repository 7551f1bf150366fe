"""A real MCP client (the official Python SDK, PyPI `mcp`) against strata's
/mcp: once in legacy mode (initialize handshake) and once in auto mode
(server/discover first, the 2026-07-28 protocol). Lists the tools, calls
meta.whoami and data.query, and checks the structured results.

Usage: python mcp_client_smoke.py URL TOKEN CONTEXT
(tests/e2e/mcp.rs, run by `cargo test`, installs the SDK into a
virtual environment, starts `strata serve` and runs this against it.)
"""

import asyncio
import json
import sys
import time
import urllib.request

from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def session(url: str, token: str, context: str, mode: str) -> None:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with Client(streamable_http_client(url, http_client=http), mode=mode) as c:
        tools = await c.list_tools()
        names = [t.name for t in tools.tools]
        assert names[0] == "meta.whoami" and "data.query" in names, names
        for t in tools.tools:
            assert t.input_schema["type"] == "object" and t.output_schema["type"] == "object", t.name
        me = await c.call_tool("meta.whoami", {})
        assert not me.is_error, me
        assert me.structured_content["server"]["name"] == "strata", me.structured_content
        assert json.loads(me.content[0].text) == me.structured_content
        q = await c.call_tool("data.query", {"contexts": [context], "window": {"last": "10m"}, "points": 5})
        assert not q.is_error, q
        sc = q.structured_content
        assert sc["columns"][0] == "time" and len(sc["rows"]) == 5, sc
        assert all(len(r) == len(sc["columns"]) for r in sc["rows"]), sc
        bad = await c.call_tool("data.query", {"contexts": [context], "points": 5000})
        assert bad.is_error and "500" in bad.content[0].text, bad
        print(f"mcp client ({mode}): {len(names)} tools, protocol {me.structured_content['server']['protocol_version']}, "
              f"data.query {len(sc['rows'])} rows x {len(sc['series'])} series")


def seed(base: str, token: str, context: str) -> None:
    """Ten minutes of per-second samples of `context` ending now."""
    now = int(time.time())
    points = [[t, float(t % 60)] for t in range(now - 600, now + 1)]
    batch = {"series": [{"node": "smoke", "context": context, "dimension": d, "points": points} for d in ("user", "system")]}
    req = urllib.request.Request(base + "/api/v1/ingest", data=json.dumps(batch).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        assert r.status == 200, r.status


async def main() -> None:
    url, token, context = sys.argv[1], sys.argv[2], sys.argv[3]
    seed(url.rsplit("/mcp", 1)[0], token, context)
    await session(url, token, context, "legacy")
    await asyncio.sleep(1.2)  # /mcp allows 10 requests per second per token
    await session(url, token, context, "auto")


if __name__ == "__main__":
    asyncio.run(main())
