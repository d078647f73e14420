"""Clients of the branch: ``client/web`` (static pages the server serves) and ``client/lobby``
(the Panda3D 3D hall). A package only so that ``client.lobby`` is importable."""
