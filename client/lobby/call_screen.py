"""What a call puts in front of the customer: captions, the step of the business, the box
to type one's name in to sign, and a button per option of a risk question.

Thin, like the mall's menu: the words come from ``CallView``; the entry and the buttons call
the app's ``sign`` and ``answer``, which the scenario runner and the tests call too.
"""

from __future__ import annotations

from collections.abc import Callable

from direct.gui.DirectGui import DirectButton, DirectEntry, DirectFrame
from direct.gui.OnscreenText import OnscreenText
from panda3d.core import NodePath, TextNode

from client.lobby.incall import CallView
from client.lobby.labels import label_font

PANEL = (0.05, 0.1, 0.2, 0.75)


class CallScreen:
    """The overlay; hidden outside a call."""

    def __init__(self, parent: NodePath, on_sign: Callable[[str], None],
                 on_answer: Callable[[str], None]) -> None:
        """``parent``: the bottom centre of the screen (``a2dBottomCenter``)."""
        self._parent = parent
        self._on_answer = on_answer
        font = label_font()
        self.captions = OnscreenText(text="", pos=(0, 0.42), scale=0.05, fg=(1, 1, 1, 1),
                                     bg=PANEL, font=font, mayChange=True, parent=parent,
                                     wordwrap=34)
        self.question = OnscreenText(text="", pos=(0, 1.55), scale=0.05, fg=(1, 1, 1, 1),
                                     bg=PANEL, font=font, mayChange=True, parent=parent,
                                     wordwrap=34)
        self.sign_frame = DirectFrame(parent=parent, frameColor=PANEL,
                                      frameSize=(-0.8, 0.8, -0.1, 0.16), pos=(0, 0, 0.7))
        OnscreenText(text="Type your name and press Enter to sign 输入姓名并回车签署",
                     pos=(0, 0.07), scale=0.045, fg=(1, 1, 1, 1), font=font,
                     parent=self.sign_frame)
        self.entry = DirectEntry(parent=self.sign_frame, scale=0.05, width=24, pos=(-0.6, 0, -0.05),
                                 command=on_sign, entryFont=font, focus=0)
        self.sign_frame.hide()
        self.buttons: dict[str, DirectButton] = {}
        self._question_id: str | None = None

    def refresh(self, call: CallView, state: str) -> None:
        """Show what ``call`` holds for a customer in ``state``."""
        self.captions.setText(call.caption_lines() if call.paired else "")
        signing = state == "Signing"
        if signing and self.sign_frame.isHidden():
            self.entry.enterText("")
            self.sign_frame.show()
            self.entry["focus"] = 1
        elif not signing and not self.sign_frame.isHidden():
            self.entry["focus"] = 0
            self.sign_frame.hide()
        q = call.question if state == "Questionnaire" else None
        self.question.setText(call.question_lines() if q is not None else "")
        if (q.id if q is not None else None) != self._question_id:
            self._question_id = q.id if q is not None else None
            for button in self.buttons.values():
                button.destroy()
            self.buttons = {}
            for i, (option, _) in enumerate(q.options if q is not None else []):
                self.buttons[option] = DirectButton(
                    parent=self._parent, text=f"{option}", scale=0.06, pad=(0.6, 0.25),
                    pos=(-0.45 * (len(q.options) - 1) / 2 + 0.45 * i, 0, 1.2) if q else (0, 0, 0),
                    command=self._on_answer, extraArgs=[option], text_font=label_font(),
                    text_align=TextNode.ACenter)

    def destroy(self) -> None:
        for button in self.buttons.values():
            button.destroy()
        self.sign_frame.destroy()
        self.captions.destroy()
        self.question.destroy()
