"""ICE policy: which local addresses are offered and which STUN/TURN servers are used.

aioice offers every interface except loopback and, given ``iceServers=None``, silently adds
a public Google STUN server. A bank's server must offer exactly the addresses its admin
chose, and nothing must leave the host unless configured.
"""

from __future__ import annotations

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

#: aioice's own choice of addresses, put back by ``unrestrict_host_addresses``
_ALL_HOSTS = aioice.ice.get_host_addresses


def unrestrict_host_addresses() -> None:
    aioice.ice.get_host_addresses = _ALL_HOSTS


def restrict_host_addresses(hosts: list[str]) -> None:
    """Offer only ``hosts`` as ICE host candidates in this process."""
    chosen = list(hosts)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [h for h in chosen if (":" in h and use_ipv6) or (":" not in h and use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses


def rtc_configuration(ice_servers: list[str]) -> RTCConfiguration:
    """An explicit configuration: an empty list means no STUN/TURN at all."""
    return RTCConfiguration(iceServers=[RTCIceServer(urls=u) for u in ice_servers])
