"""``manage.py bridge_events``: run a consumer of the registry (the events bridge) until SIGTERM."""

import logging

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.core.signals_stop import stop_on_signals
from apps.events.bridge import ConsumerRunner
from apps.events.consumers_registry import CONSUMERS

logger = logging.getLogger("apps.events.bridge")


class Command(BaseCommand):
    help = "Consume the events topic and deliver each event to its team's live pages."

    def add_arguments(self, parser):
        parser.add_argument("--consumer", default="events-bridge", choices=sorted(CONSUMERS))

    def handle(self, *args, **options):
        stop = stop_on_signals(logger, "bridge")
        if not settings.KAFKA_BOOTSTRAP_SERVERS:
            # The embedded default hands events to the channel layer on commit.
            logger.warning("KAFKA_BOOTSTRAP_SERVERS is not set: nothing to bridge")
            stop.wait()
            return
        runner = ConsumerRunner(options["consumer"], stop=stop)
        runner.run()
        logger.info(
            "bridge stopped",
            extra={"handled": runner.handled, "dead_lettered": runner.dead_lettered},
        )
