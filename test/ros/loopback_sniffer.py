"""Count DDS (RTPS) packets of one domain per network interface with a raw AF_PACKET socket.

Fast DDS uses UDP ports PB + DG * domain + offset (PB 7400, DG 250, offsets < 250), so every packet of a test's
domain has a destination port in one 250-wide range. Needs root (CAP_NET_RAW); tests skip without it.
"""

from __future__ import annotations

import socket
import struct
import threading

import pytest

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800


class DdsSniffer:
    def __init__(self, domain: int):
        self.low = 7400 + 250 * domain
        self.high = self.low + 249
        self.loopback_packets = 0
        self.external_packets = 0
        self.external_interfaces: set[str] = set()
        self._stop = threading.Event()
        try:
            self._socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError:
            pytest.skip("counting packets per interface needs CAP_NET_RAW (run as root)")
        self._socket.settimeout(0.1)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DdsSniffer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame, address = self._socket.recvfrom(65535)
            except TimeoutError:
                continue
            port = _udp_destination_port(frame)
            if port is None or not self.low <= port <= self.high:
                continue
            interface = address[0]  # AF_PACKET addresses start with the interface name
            if interface == "lo":
                self.loopback_packets += 1
            else:
                self.external_packets += 1
                self.external_interfaces.add(interface)


def _udp_destination_port(frame: bytes) -> int | None:
    """Destination UDP port of an Ethernet/IPv4 frame (loopback frames carry a zeroed Ethernet header too)."""
    if len(frame) < 14 + 20 + 4 or struct.unpack("!H", frame[12:14])[0] != ETH_P_IP:
        return None
    ip_header_length = (frame[14] & 0x0F) * 4
    if frame[14 + 9] != socket.IPPROTO_UDP:
        return None
    offset = 14 + ip_header_length
    return struct.unpack("!H", frame[offset + 2 : offset + 4])[0]
