"""``manage.py simulate_openai``: the OpenAI-compatible simulator in the foreground.

For pointing a development portal, a benchmark or a curl at a model server
that answers instantly or with configured latency, with no network or API key.
"""

import uvicorn
from django.core.management.base import BaseCommand

from apps.inference.simulator.app import SimulatorConfig, create_app


class Command(BaseCommand):
    help = "Serve the OpenAI-compatible simulator (deterministic replies, injectable faults)."

    def add_arguments(self, parser):
        defaults = SimulatorConfig()
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=9100)
        parser.add_argument("--latency-ms", type=float, default=defaults.latency_ms)
        parser.add_argument("--ttft-ms", type=float, default=defaults.ttft_ms)
        parser.add_argument(
            "--tokens-per-second",
            type=float,
            default=defaults.tokens_per_second,
            help="0 streams as fast as possible",
        )
        parser.add_argument(
            "--models",
            default=",".join(defaults.models),
            help="comma-separated model ids",
        )
        parser.add_argument("--default-tokens", type=int, default=defaults.default_tokens)
        parser.add_argument("--api-key", default=None, help="require this bearer token")
        parser.add_argument(
            "--retry-after-seconds", type=float, default=defaults.retry_after_seconds
        )
        parser.add_argument("--timeout-seconds", type=float, default=defaults.timeout_seconds)

    def handle(self, *args, **options):
        config = SimulatorConfig(
            models=[m.strip() for m in options["models"].split(",") if m.strip()],
            latency_ms=options["latency_ms"],
            ttft_ms=options["ttft_ms"],
            tokens_per_second=options["tokens_per_second"],
            default_tokens=options["default_tokens"],
            api_key=options["api_key"],
            retry_after_seconds=options["retry_after_seconds"],
            timeout_seconds=options["timeout_seconds"],
        )
        host, port = options["host"], options["port"]
        self.stdout.write(
            f"OpenAI-compatible simulator: base URL http://{host}:{port}/v1 "
            f"(models: {', '.join(config.models)}; faults: POST /_sim/faults)"
        )
        uvicorn.run(create_app(config), host=host, port=port, lifespan="off", log_level="info")
