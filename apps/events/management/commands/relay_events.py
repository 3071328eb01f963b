"""``manage.py relay_events``: publish the outbox to Kafka until SIGTERM."""

import logging
import signal
import threading

from django.core.management.base import BaseCommand

from apps.events.relay import Relay

logger = logging.getLogger("apps.events.relay")


class Command(BaseCommand):
    help = "Publish outbox events to the Kafka topic, in order, until stopped."

    def handle(self, *args, **options):
        stop = threading.Event()

        def on_signal(signum, _frame):
            logger.info("relay stopping", extra={"signal": signum})
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        relay = Relay(stop=stop)
        relay.run()
        logger.info("relay stopped", extra={"published": relay.published})
