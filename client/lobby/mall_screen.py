"""The Mall state's screen: the shelf's menu over the hall while the customer stands at it.

Thin: the words come from ``Shelf.menu()``; choosing and redeeming are the app's keys
calling ``Shelf.select`` / ``Shelf.confirm``. A cycling selection in one OnscreenText keeps
it usable with the keyboard alone and drawable by the software renderer.
"""

from __future__ import annotations

from direct.gui.OnscreenText import OnscreenText
from panda3d.core import NodePath, TextNode

from client.lobby.labels import label_font
from client.lobby.shelf import Shelf


class MallScreen:
    """The menu, hidden until ``show``."""

    def __init__(self, parent: NodePath) -> None:
        """``parent``: the left edge of the screen (``a2dLeftCenter``)."""
        self.text = OnscreenText(text="", pos=(0.058, -0.2), scale=0.045, align=TextNode.ALeft,
                                 fg=(1, 1, 1, 1), bg=(0.05, 0.1, 0.2, 0.8), font=label_font(),
                                 mayChange=True, parent=parent)
        self.text.hide()
        self.shown = False

    def show(self, shelf: Shelf) -> None:
        self.shown = True
        self.refresh(shelf)
        self.text.show()

    def refresh(self, shelf: Shelf) -> None:
        if self.shown:
            self.text.setText(shelf.menu())

    def hide(self) -> None:
        self.shown = False
        self.text.hide()

    def destroy(self) -> None:
        self.text.destroy()
