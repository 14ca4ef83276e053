"""Webhook URL checks: http(s) only, and no loopback/private targets unless allowed.

Checked when a rule is made and again before each delivery, because a name can be
re-pointed at an internal address after the rule was accepted.
"""

import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeUrl(ValueError):
    pass


def check_webhook_url(url: str, allow_private: bool) -> None:
    """Raise UnsafeUrl with the reason when `url` may not receive webhooks."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrl("must be an http:// or https:// URL with a host")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise UnsafeUrl(f"host {parts.hostname!r} does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global:
            raise UnsafeUrl(
                f"{parts.hostname} resolves to the non-public address {address}; "
                "set CURVECAST_WEBHOOK_ALLOW_PRIVATE=true to allow it"
            )
