"""Private Redis servers on loopback: a single one, a Cluster, a Sentinel setup.

Used by the tests and the benchmarks; every server runs without persistence in a temporary
folder and is stopped when the block ends.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis

#: How long to wait for a fresh server to answer, a cluster to form or a failover to end: a
#: guard against a hang, not a measure. Six cluster nodes took over 20 s to agree on a 2-core
#: machine running the suite on four Pythons beside a mutation run.
STARTUP_TIMEOUT = 60.0
#: A cluster node also listens on its port plus this (the cluster bus).
CLUSTER_BUS_OFFSET = 10000
#: Milliseconds after which a silent cluster node or primary counts as down.
NODE_TIMEOUT_MS = 1000
SENTINEL_SERVICE = "helpcrunch"
NO_PERSISTENCE = ("--save", "", "--appendonly", "no")


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_cluster_port() -> int:
    """A port free on loopback whose cluster-bus port (+10000) is free too."""
    while True:
        port = free_port()
        if port + CLUSTER_BUS_OFFSET > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + CLUSTER_BUS_OFFSET))
            except OSError:
                continue
        return port


def binary(name: str) -> str:
    """The path of a Redis program.

    Raises:
        FileNotFoundError: it is not installed (`nox -s tests` installs it).
    """
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} is not installed (nox -s tests installs it)")
    return path


def wait_for(check: Callable[[], bool], what: str) -> None:
    """Poll ``check`` until it holds; fail after STARTUP_TIMEOUT."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        with contextlib.suppress(redis.RedisError, OSError):
            if check():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


class RedisNode:
    """One redis-server process on a loopback port, which a test may kill and start again."""

    def __init__(self, workdir: Path, port: int, *args: str, sentinel: bool = False) -> None:
        self.sentinel = sentinel
        self.workdir = workdir
        self.port = port
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:port/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """A client of this node alone (close it after use)."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self, *, wait: bool = True) -> None:
        """Start the server (empty: no persistence) and wait until it answers PING."""
        command = [
            binary("redis-server"),
            *self.args,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            *(() if self.sentinel else NO_PERSISTENCE),
            "--dir",
            str(self.workdir),
        ]
        self.process = subprocess.Popen(  # noqa: S603 - our own argument list
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Wait until the server answers PING."""
        with self.client() as client:
            wait_for(lambda: bool(client.ping()), f"redis-server on port {self.port}")

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        """Stop the server."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@contextlib.contextmanager
def nodes_in(workdir: Path) -> Iterator[list[RedisNode]]:
    """A list to put nodes in; every node in it is stopped when the block ends."""
    nodes: list[RedisNode] = []
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """Run redis-server (no persistence) for the block; yield its URL.

    Raises:
        FileNotFoundError: redis-server is not installed (`nox -s tests` installs it).
    """
    with single_redis() as node:
        yield node.url


@contextlib.contextmanager
def single_redis() -> Iterator[RedisNode]:
    """Run one redis-server for the block; yield it (a test may kill and restart it)."""
    binary("redis-server")
    with tempfile.TemporaryDirectory() as workdir, nodes_in(Path(workdir)) as nodes:
        nodes.append(RedisNode(Path(workdir), free_port()))
        nodes[0].start()
        yield nodes[0]


class Cluster:
    """A running Redis Cluster on loopback: masters, and replicas if asked for."""

    def __init__(self, nodes: list[RedisNode]) -> None:
        self.nodes = nodes

    @property
    def url(self) -> str:
        """The URL ``RedisRateLimiter.from_url`` takes for it (one node; the rest found)."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def node_for(self, key: str) -> RedisNode:
        """The node that serves ``key``'s hash slot (its master)."""
        alive = next(node for node in self.nodes if node.process is not None)
        with alive.client() as client:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    port = int(primary[1])
                    return next(node for node in self.nodes if node.port == port)
        raise LookupError(key)

    def wait_ok(self) -> None:
        """Wait until every running node reports the cluster healthy."""

        def healthy(node: RedisNode) -> bool:
            with node.client() as client:
                replication = client.info("replication")
                in_sync = replication["role"] == "master" or (
                    replication.get("master_link_status") == "up"
                )
                return in_sync and b"cluster_state:ok" in client.execute_command("CLUSTER", "INFO")

        for node in self.nodes:
            if node.process is not None:
                wait_for(functools.partial(healthy, node), f"node {node.port} to see it healthy")


@contextlib.contextmanager
def redis_cluster(masters: int = 3, replicas: int = 0) -> Iterator[Cluster]:
    """Run a Redis Cluster for the block (``redis-cli --cluster create``).

    ``replicas`` per master: with one, killing a master makes its replica take over.
    """
    cli = binary("redis-cli")
    binary("redis-server")
    with tempfile.TemporaryDirectory() as workdir, nodes_in(Path(workdir)) as nodes:
        for _ in range(masters * (1 + replicas)):
            port = free_cluster_port()
            node = RedisNode(
                Path(workdir),
                port,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{port}.conf",
                "--cluster-node-timeout",
                str(NODE_TIMEOUT_MS),
                # Slots of a dead node fail; the other nodes' slots go on being served.
                "--cluster-require-full-coverage",
                "no",
                "--repl-diskless-sync-delay",
                "0",
            )
            nodes.append(node)
            node.start()
        subprocess.run(  # noqa: S603 - our own argument list
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in nodes),
                "--cluster-replicas",
                str(replicas),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=STARTUP_TIMEOUT,
        )
        cluster = Cluster(nodes)
        cluster.wait_ok()
        yield cluster


class SentinelSetup:
    """A primary, a replica and one sentinel watching them, on loopback."""

    def __init__(self, primary: RedisNode, replica: RedisNode, sentinel: RedisNode) -> None:
        self.primary = primary
        self.replica = replica
        self.sentinel = sentinel

    @property
    def url(self) -> str:
        """The URL ``RedisRateLimiter.from_url`` takes for it."""
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{SENTINEL_SERVICE}"

    def primary_port(self) -> int:
        """The port of the node the sentinel calls primary now."""
        with self.sentinel.client() as client:
            _, port = client.execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_SERVICE
            )
            return int(port)

    def wait_replicated(self) -> None:
        """Wait until the sentinel knows a replica that is in sync with the primary."""

        def ready() -> bool:
            with self.sentinel.client() as client:
                replicas = client.execute_command("SENTINEL", "REPLICAS", SENTINEL_SERVICE)
            return any(
                fields.get(b"master-link-status") == b"ok" and b"down" not in fields[b"flags"]
                for fields in replicas
            )

        wait_for(ready, "the sentinel to see a replica in sync")

    def failover(self) -> None:
        """Promote the replica (``SENTINEL FAILOVER``) and wait until the sentinel says so."""
        self.wait_replicated()
        before = self.primary_port()

        def started() -> bool:
            with self.sentinel.client() as client:
                try:
                    client.execute_command("SENTINEL", "FAILOVER", SENTINEL_SERVICE)
                except redis.ResponseError as exc:  # NOGOODSLAVE until it has fresh INFO
                    if "NOGOODSLAVE" not in str(exc):
                        raise
                    return False
            return True

        wait_for(started, "the sentinel to accept a failover")
        wait_for(lambda: self.primary_port() != before, "the sentinel to promote the replica")
        after = self.primary_port()
        new_primary = next(n for n in (self.primary, self.replica) if n.port == after)
        with new_primary.client() as client:
            wait_for(
                lambda: "master" == client.info("replication")["role"],
                "the replica to become primary",
            )

    def kill_primary(self) -> None:
        """Kill the primary (a crash) and wait until the sentinel has promoted the replica."""
        self.wait_replicated()
        before = self.primary_port()
        next(n for n in (self.primary, self.replica) if n.port == before).kill()
        wait_for(lambda: self.primary_port() != before, "the sentinel to promote the replica")


@contextlib.contextmanager
def redis_sentinel() -> Iterator[SentinelSetup]:
    """Run a primary, a replica and a sentinel for the block."""
    binary("redis-server")
    with tempfile.TemporaryDirectory() as workdir, nodes_in(Path(workdir)) as nodes:
        # No 5 s pause before a full sync (the default, meant for many replicas at once).
        sync = ("--repl-diskless-sync-delay", "0")
        primary = RedisNode(Path(workdir), free_port(), *sync)
        nodes.append(primary)
        primary.start()
        replica = RedisNode(
            Path(workdir), free_port(), *sync, "--replicaof", "127.0.0.1", str(primary.port)
        )
        nodes.append(replica)
        replica.start()
        config = Path(workdir) / "sentinel.conf"  # the sentinel rewrites it: writable
        config.write_text(
            f"sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {primary.port} 1\n"
            f"sentinel down-after-milliseconds {SENTINEL_SERVICE} {NODE_TIMEOUT_MS}\n"
            f"sentinel failover-timeout {SENTINEL_SERVICE} {10 * NODE_TIMEOUT_MS}\n"
        )
        sentinel = RedisNode(Path(workdir), free_port(), str(config), "--sentinel", sentinel=True)
        nodes.append(sentinel)
        sentinel.start()
        setup = SentinelSetup(primary, replica, sentinel)
        setup.wait_replicated()
        yield setup
