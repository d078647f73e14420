"""What a call puts in front of the customer: captions, the step of the business, a box to
type into (one's ID number at the identity step, then held up to the camera with the card;
one's name to sign the contract), and a button per option of a risk question.

Thin, like the mall's menu: the words come from ``CallView``; the box and the buttons call
the app's ``show_id``, ``sign`` and ``answer``, which the scenario runner and the tests call
too.
"""

from __future__ import annotations

from collections.abc import Callable

from direct.gui.DirectGui import DirectButton, DirectEntry, DirectFrame
from direct.gui.OnscreenText import OnscreenText
from panda3d.core import NodePath, TextNode

from client.lobby.incall import CallView
from client.lobby.labels import label_font

PANEL = (0.05, 0.1, 0.2, 0.75)
ASK = {"sign": "Type your name and press Enter to sign 输入姓名并回车签署",
       "id": "Type your ID number and press Enter to hold your ID card up 输入身份证号并回车出示"}


class CallScreen:
    """The overlay; hidden outside a call."""

    def __init__(self, parent: NodePath, on_sign: Callable[[str], None],
                 on_answer: Callable[[str], None], on_show_id: Callable[[str], None]) -> None:
        """``parent``: the bottom centre of the screen (``a2dBottomCenter``)."""
        self._parent = parent
        self._on_answer = on_answer
        self._submit = {"sign": on_sign, "id": on_show_id}
        #: what the box asks for: sign, id, or None while it is hidden
        self.asking: str | None = None
        font = label_font()
        self.captions = OnscreenText(text="", pos=(0, 0.42), scale=0.05, fg=(1, 1, 1, 1),
                                     bg=PANEL, font=font, mayChange=True, parent=parent,
                                     wordwrap=34)
        self.question = OnscreenText(text="", pos=(0, 1.55), scale=0.05, fg=(1, 1, 1, 1),
                                     bg=PANEL, font=font, mayChange=True, parent=parent,
                                     wordwrap=34)
        self.sign_frame = DirectFrame(parent=parent, frameColor=PANEL,
                                      frameSize=(-0.8, 0.8, -0.1, 0.16), pos=(0, 0, 0.7))
        self.ask_text = OnscreenText(text="", pos=(0, 0.07), scale=0.045, fg=(1, 1, 1, 1),
                                     font=font, parent=self.sign_frame, mayChange=True)
        self.entry = DirectEntry(parent=self.sign_frame, scale=0.05, width=24,
                                 pos=(-0.6, 0, -0.05), command=self.submit, entryFont=font,
                                 focus=0)
        self.sign_frame.hide()
        self.buttons: dict[str, DirectButton] = {}
        self._question_id: str | None = None

    def refresh(self, call: CallView, state: str) -> None:
        """Show what ``call`` holds for a customer in ``state``."""
        self.captions.setText(call.caption_lines() if call.paired else "")
        asking = "sign" if state == "Signing" else \
            "id" if state == "InCall" and call.identity_pending else None
        if asking != self.asking:
            self.asking = asking
            self.ask_text.setText(ASK.get(asking or "", ""))
            self.entry.enterText("")
            self.entry["focus"] = int(asking is not None)
            if asking is None:
                self.sign_frame.hide()
            else:
                self.sign_frame.show()
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

    def submit(self, text: str) -> None:
        """Enter in the box: the ID number or the name goes where the step wants it."""
        if self.asking is not None:
            self._submit[self.asking](text)

    def destroy(self) -> None:
        for button in self.buttons.values():
            button.destroy()
        self.sign_frame.destroy()
        self.captions.destroy()
        self.question.destroy()
