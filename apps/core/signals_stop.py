"""Long-running management commands stop cleanly on SIGTERM (Kubernetes, Compose) and
Ctrl-C: the handler only sets an event that the command's loop watches."""

import logging
import signal
import threading


def stop_on_signals(logger: logging.Logger, name: str) -> threading.Event:
    """An event set by SIGTERM or SIGINT, logging which one stopped ``name``."""
    stop = threading.Event()

    def on_signal(signum, _frame):
        logger.info(f"{name} stopping", extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop
