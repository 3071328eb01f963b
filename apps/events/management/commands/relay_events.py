"""``manage.py relay_events``: publish the outbox to Kafka until SIGTERM."""

import logging

from django.core.management.base import BaseCommand

from apps.core.signals_stop import stop_on_signals
from apps.events.relay import Relay

logger = logging.getLogger("apps.events.relay")


class Command(BaseCommand):
    help = "Publish outbox events to the Kafka topic, in order, until stopped."

    def handle(self, *args, **options):
        stop = stop_on_signals(logger, "relay")
        relay = Relay(stop=stop)
        relay.run()
        logger.info("relay stopped", extra={"published": relay.published})
