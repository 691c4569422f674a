"""`dagster dev` (webserver and daemon) for tests, and the GraphQL the UI sends to launch a
backfill over a range of days."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cx_pipeline.settings import PROJECT_ROOT

BIN = Path(sys.executable).parent

LAUNCH_BACKFILL = """mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
BACKFILL_STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status } } }"""


def graphql(port: int, query: str, variables: dict) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        json.dumps({"query": query, "variables": variables}).encode(),
        {"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["data"]
    except urllib.error.HTTPError as error:  # the server's own explanation, not just "500"
        raise AssertionError(f"GraphQL error {error.code}: {error.read()[:3000]!r}") from error


def _stoppable() -> None:
    """In the child: SIGTERM stops it also when the tests run as a shell's background job
    (`./dev test &`), which ignores SIGINT: dagster maps SIGTERM to SIGINT's handler, so
    an inherited ignored SIGINT made `dagster dev` ignore the SIGTERM that ends it."""
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, signal.SIG_DFL)


@contextmanager
def dagster_dev(env: dict[str, str]) -> Iterator[int]:
    """Run `dagster dev` on a free port until the block ends; yields the port once the
    webserver answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [BIN / "dagster", "dev", "-w", "workspace.yaml", "-p", str(port)],
        env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, preexec_fn=_stoppable,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while True:  # the webserver and the code location come up
            try:
                graphql(port, "{ version }", {})
                break
            except (OSError, AssertionError):
                assert time.monotonic() < deadline, "dagster dev did not start"
                time.sleep(2)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def backfill_as_the_ui_does(port: int, assets: list[str], days: list[str]) -> str:
    """Launch the backfill "Materialize selected" with a date range sends, and wait for the
    daemon to finish it; returns its final status."""
    launched = graphql(
        port, LAUNCH_BACKFILL,
        {"params": {"assetSelection": [{"path": [name]} for name in assets],
                    "partitionNames": days}},
    )["launchPartitionBackfill"]  # fmt: skip
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    status, deadline = "REQUESTED", time.monotonic() + 540
    while status == "REQUESTED":
        assert time.monotonic() < deadline, "the backfill did not finish"
        time.sleep(5)
        status = graphql(port, BACKFILL_STATUS, {"id": launched["backfillId"]})[
            "partitionBackfillOrError"
        ]["status"]
    return status
