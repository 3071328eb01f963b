"""Run the simulator in a background thread, for tests and benchmarks.

uvicorn in a daemon thread of the calling process: the server shares the
process but not the event loop, so synchronous test code (the ``openai`` SDK,
Celery tasks run eagerly) talks to it over real sockets.
"""

import json
import socket
import threading
import time
import urllib.request

import uvicorn

from apps.inference.simulator.app import SimulatorApp, SimulatorConfig, create_app


class SimulatorServer:
    """``with SimulatorServer() as sim: OpenAI(base_url=sim.base_url, ...)``.

    ``config`` is the running app's own object: change it between requests.
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        start_timeout: float = 10.0,
    ) -> None:
        self.app: SimulatorApp = create_app(config)
        self.host = host
        self.port = port
        self.start_timeout = start_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def config(self) -> SimulatorConfig:
        return self.app.config

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def start(self) -> "SimulatorServer":
        # Binding here (not in uvicorn) makes port 0 race-free and the port known up front.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"openai-simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._wait_until_serving()
        return self

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise RuntimeError(f"the simulator on {self.url} stopped while starting")
            if self._server.started:
                try:
                    socket.create_connection((self.host, self.port), 0.5).close()
                    return
                except OSError:
                    pass
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"the simulator did not start on {self.url} in {self.start_timeout}s")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> "SimulatorServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- control endpoints

    def _control(self, method: str, path: str, payload: dict | None = None) -> dict:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(  # noqa: S310 - always our own http:// URL
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def inject(self, *faults: str, model: str | None = None) -> dict:
        """Queue faults (``"429"``, ``"429:2.5"``, ``"timeout:5"``, ``"cut"``...) for next calls."""
        return self._control("POST", "/_sim/faults", {"faults": list(faults), "model": model})

    def clear(self) -> None:
        """Drop queued faults and reset request counts."""
        self._control("DELETE", "/_sim/faults")

    def stats(self) -> dict:
        """``{"requests": {model: count}, "total": n}`` of chat completion requests."""
        return self._control("GET", "/_sim/stats")
