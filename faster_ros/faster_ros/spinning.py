"""A node process's ``main``: spin until SIGINT or SIGTERM, stopping between callbacks, never under one.

rclpy's own signal handler invalidates the context the moment a signal arrives, so a callback still running (a
recorder writing a bag, a simulator rendering the next frame) fails on its next publish or write and the process
dies with a traceback. Here rclpy installs no handler; the signal only ends the loop, the running callback finishes,
and the node is destroyed while its context is still valid.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions


def run_node(make_node: Callable[[], Node], args: list[str] | None = None) -> None:
    with rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO):
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        node = make_node()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        try:
            while not stop.is_set():
                executor.spin_once(timeout_sec=0.1)
        finally:
            node.destroy_node()
