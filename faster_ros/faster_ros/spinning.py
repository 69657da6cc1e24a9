"""Spin a node until SIGINT or SIGTERM, stopping between callbacks, never under one.

rclpy's own signal handler invalidates the context the moment a signal arrives, so a callback still running (a
recorder writing a bag, a simulator rendering the next frame) fails on its next publish or write and the process
dies with a traceback. A process that calls ``rclpy.init(signal_handler_options=SignalHandlerOptions.NO)`` and
spins here lets the running callback finish, then returns.
"""

from __future__ import annotations

import signal
import threading

from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node


def spin_until_signalled(node: Node) -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    while not stop.is_set():
        executor.spin_once(timeout_sec=0.1)
