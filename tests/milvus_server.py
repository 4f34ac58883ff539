"""A real Milvus server for the tests: the standalone server shipped by the ``milvus`` package (2.3.5: its own
etcd and local storage), on 127.0.0.1 ports that are free, dying with the test process."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["MilvusServerProcess", "start_milvus_server"]

_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 directly, never a proxy


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # in the child, before exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _own_etcd_ports(base: Path, client_port: int) -> None:
    """The embedded etcd listens on etcd's default ports (2379, 2380) unless given a config file: give it
    free ones, so the server starts beside another (a developer's, another test run's)."""
    peer = f"http://127.0.0.1:{_free_port()}"
    client = f"http://127.0.0.1:{client_port}"
    etcd = base / "configs" / "etcd.yaml"
    etcd.write_text(
        f"name: lookalike-test\nlisten-client-urls: {client}\nadvertise-client-urls: {client}\n"
        f"listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\ninitial-cluster: lookalike-test={peer}\n"
    )
    conf = base / "configs" / "milvus.yaml"
    text = conf.read_text()
    assert text.count("\netcd:\n") == 1, "unexpected milvus.yaml layout"
    conf.write_text(text.replace("\netcd:\n", f"\netcd:\n  config:\n    path: {etcd}\n", 1))


class MilvusServerProcess:
    """A running server: ``uri`` to connect to, :meth:`stop` to end it."""

    def __init__(self, proc: subprocess.Popen[Any], uri: str, log: Path) -> None:
        self.proc, self.uri, self.log = proc, uri, log

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)  # a graceful stop takes 15 s; the data is thrown away
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_milvus_server(data_dir: Path, timeout: float = 180.0) -> MilvusServerProcess:
    """Start the ``milvus`` package's server with its data in ``data_dir``; raises when it cannot start
    (package missing, no binary for this platform, not healthy in ``timeout`` seconds)."""
    import milvus  # the `milvus-server` extra

    config = milvus.MilvusServerConfig(data_dir=str(data_dir), proxy_port=_free_port())
    config.resolve()  # picks free ports for etcd and the coordinators, writes configs/milvus.yaml
    milvus._initialize_data_files(config.base_data_dir)  # unpacks the server binary and its libraries
    base = Path(config.base_data_dir)
    _own_etcd_ports(base, int(config.get("etcd_port")))
    health = _free_port()
    env = {
        **os.environ,
        "DEPLOY_MODE": "STANDALONE",
        "METRICS_PORT": str(health),
        "MILVUS_RUN_DIR": str(base / "run"),
        "LD_LIBRARY_PATH": f"{base / 'bin'}:{os.environ.get('LD_LIBRARY_PATH', '')}",
    }
    log = base / "logs" / "milvus-stdout.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(base / "bin" / "milvus"), "run", "standalone"],
            cwd=base,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    server = MilvusServerProcess(proc, f"http://127.0.0.1:{config.get('proxy_port')}", log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the Milvus server exited with {proc.returncode}; see {log}")
        with contextlib.suppress(OSError), _LOCAL.open(f"http://127.0.0.1:{health}/healthz", timeout=2) as resp:
            if b"OK" in resp.read():
                return server
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"the Milvus server did not become healthy in {timeout:.0f} s; see {log}")
