"""OpenAI-compatible simulator: ``create_app`` for ASGI servers, ``SimulatorServer`` for tests."""

from apps.inference.simulator.app import SimulatorApp, SimulatorConfig, create_app
from apps.inference.simulator.server import SimulatorServer

__all__ = ["SimulatorApp", "SimulatorConfig", "SimulatorServer", "create_app"]
