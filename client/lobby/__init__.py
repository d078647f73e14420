"""The 3D branch hall: a Panda3D client (``vbank lobby``) built from ``scenes/lobby.yaml``.

``layout`` (the hall file, nearest-target and walking rules) is plain Python; ``world`` builds
the scene graph from it without a ``ShowBase``; ``app`` is the one ``ShowBase`` subclass with
its state machine (``states``) and the seam to the network (``net``).
"""

from __future__ import annotations

from vbank import VbankError


class LobbyError(VbankError):
    """Something the 3D lobby cannot do; the message says exactly what."""


class LayoutError(LobbyError):
    """A hall file that cannot be used: names the file, the entry and what is wrong."""


class LinkError(LobbyError):
    """The branch server cannot be reached, refused the sign-in, or closed the connection."""


class SignInRefused(LinkError):
    """The branch refused the customer's name and password: trying again will not help."""
