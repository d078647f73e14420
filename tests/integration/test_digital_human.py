"""A customer talks with the digital human over real WebRTC, with real synthesized speech."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np

from vbank.headless import Participant
from vbank.scenario.hearing import Ear
from vbank.serverproc import start_server
from vbank.speech.conditions import real_clips
from vbank.speech.tracks import SpeechTrack
from vbank.speech.tts import PiperSynthesizer


def speech(voice: PiperSynthesizer, text: str) -> np.ndarray:
    gap = np.zeros(4800, np.int16)
    return np.concatenate([gap, voice.synthesize(text), gap])


async def test_digital_human_greets_answers_and_hands_over(tmp_path: Path,
                                                            video: list[bytes]) -> None:
    server = start_server(tmp_path, env={"VBANK_DIGITAL_HUMAN": "true",
                                         "VBANK_MEDIA_WORKERS": "1"}, timeout=120)
    voice, ear = PiperSynthesizer(), Ear("en")
    mouth = SpeechTrack()
    try:
        c = Participant(server.url, "alice")
        await c.connect()
        await c.send({"type": "join", "service": "general_enquiry", "with": "digital_human"})
        paired = await c.expect("paired")
        assert paired["peer"]["role"] == "digital_human"
        listening_from = time.monotonic()
        peer = await c.start_media(paired["session_id"], video, voice=mouth)

        await c.expect("caption", speaker="digital_human", timeout=20,
                       where=lambda m: "help you" in m["text"])
        await asyncio.sleep(3)
        greeting = [(at, pcm) for at, pcm in peer.reception.audio if at >= listening_from]
        # the greeting really travelled: it is recognised, and something else is not
        now = time.monotonic()
        heard, texts = await asyncio.to_thread(
            ear.hears, greeting, "(?i)(digital assistant|help you today)", now, True)
        assert heard is not None, texts
        assert (await asyncio.to_thread(
            ear.hears, greeting, "(?i)your card has been blocked", now, True))[0] is None
        assert peer.reception.frames["video"] > 20 and peer.reception.video_size == (320, 240)

        mark = len(c.messages)
        mouth.play(speech(voice, "What are your opening hours?"))
        said = await c.expect("caption", after=mark, speaker="customer", timeout=20)
        assert "hours" in said["text"]
        await c.expect("caption", after=mark, speaker="digital_human", timeout=20,
                       where=lambda m: "open every day" in m["text"])

        await asyncio.sleep(3)
        mark = len(c.messages)
        mouth.play(speech(voice, "I want to talk to a person."))
        handed = await c.expect("handed_over", after=mark, timeout=30)
        assert handed["reason"] == "asked"
        assert (await c.expect("requeued", after=mark))["position"] == 1
        await c.close()
    finally:
        mouth.stop()
        server.stop()


async def test_a_long_wait_goes_to_the_digital_human_who_ignores_noise_and_asks_again(
        tmp_path: Path, video: list[bytes]) -> None:
    server = start_server(tmp_path, env={"VBANK_DIGITAL_HUMAN": "true",
                                         "VBANK_MEDIA_WORKERS": "1",
                                         "VBANK_QUEUE_THRESHOLD_S": "1"}, timeout=120)
    mouth = SpeechTrack()
    try:
        t = Participant(server.url, "tina")
        await t.connect()
        c = Participant(server.url, "alice")
        await c.connect()
        await c.send({"type": "join", "service": "general_enquiry"})  # a teller, please
        paired = await c.expect("paired", timeout=20)  # nobody accepts: the avatar steps in
        assert paired["peer"]["role"] == "digital_human"
        queues = await t.expect("queues", where=lambda m: any(
            s["with_digital_human"] for s in m["services"]))
        assert next(s for s in queues["services"] if s["id"] == "general_enquiry")[
            "with_digital_human"][0]["session_id"] == paired["session_id"]
        await c.start_media(paired["session_id"], video, voice=mouth)
        await c.expect("caption", speaker="digital_human", timeout=20,
                       where=lambda m: "help you" in m["text"])
        await t.expect("transcript", session_id=paired["session_id"])
        await asyncio.sleep(2)
        mark = len(c.messages)
        rng = np.random.default_rng(5)
        mouth.play((rng.standard_normal(48000) * 6000).astype(np.int16))  # a second of noise
        await asyncio.sleep(4)  # noise is no speech: no turn, no answer, nothing interrupted
        assert [m for m in c.messages[mark:] if m.get("type") == "caption"] == []
        # a real person saying something the assistant cannot help with gets asked again
        sentence = next(clip for clip in real_clips() if clip.name == "librivox-0880")
        mouth.play(sentence.pcm)
        heard = await c.expect("caption", after=mark, speaker="customer", timeout=20)
        assert "young man" in heard["text"].lower()
        await c.expect("caption", after=mark, speaker="digital_human", timeout=20,
                       where=lambda m: "say it again" in m["text"])
        await c.close()
        await t.close()
    finally:
        mouth.stop()
        server.stop()


async def test_customer_speaking_interrupts_the_avatar(tmp_path: Path,
                                                       video: list[bytes]) -> None:
    server = start_server(tmp_path, env={"VBANK_DIGITAL_HUMAN": "true",
                                         "VBANK_MEDIA_WORKERS": "1"}, timeout=120)
    voice = PiperSynthesizer()
    mouth = SpeechTrack()
    try:
        c = Participant(server.url, "alice")
        await c.connect()
        await c.send({"type": "join", "service": "general_enquiry", "with": "digital_human"})
        paired = await c.expect("paired")
        peer = await c.start_media(paired["session_id"], video, voice=mouth)
        await c.expect("caption", speaker="digital_human", timeout=20,
                       where=lambda m: "help you" in m["text"])
        await asyncio.sleep(3)
        mark = len(c.messages)
        mouth.play(speech(voice, "What are your opening hours?"))
        await c.expect("caption", after=mark, speaker="digital_human", timeout=20,
                       where=lambda m: "open every day" in m["text"])
        await asyncio.sleep(1.0)  # the long answer is playing now
        mouth.play(speech(voice, "What are your fees?"))  # the customer cuts in
        interrupted_at = time.monotonic()
        await c.expect("caption", after=mark, speaker="customer", timeout=20,
                       where=lambda m: "fees" in m["text"])
        # the rest of the opening-hours answer was dropped: no caption of its later clauses
        later = [m["text"] for m in c.messages[mark:] if m.get("speaker") == "digital_human"]
        assert not any("nine in the morning" in text for text in later), later
        await c.expect("caption", after=mark, speaker="digital_human", timeout=20,
                       where=lambda m: "free" in m["text"])
        assert time.monotonic() - interrupted_at < 20
        del peer
        await c.close()
    finally:
        mouth.stop()
        server.stop()


async def test_a_teller_who_drops_leaves_the_customer_first_in_line_offered_the_assistant(
        tmp_path: Path, video: list[bytes]) -> None:
    """The customer is told why, keeps their place for a person, and is offered (not sent
    to) the assistant, whose face then comes over the media already up. A customer whose
    media never starts with the assistant goes back to the head of the queue, told why."""
    server = start_server(tmp_path, env={"VBANK_DIGITAL_HUMAN": "true",
                                         "VBANK_MEDIA_WORKERS": "1",
                                         "VBANK_AGENT_MEDIA_TIMEOUT_S": "4"}, timeout=120)
    try:
        c, t = Participant(server.url, "alice"), Participant(server.url, "tina")
        await c.connect()
        await t.connect()
        await t.send({"type": "status", "status": "available", "skills": ["account_opening"]})
        await t.expect("teller", status="available")
        await c.send({"type": "join", "service": "account_opening"})
        await c.expect("queued")
        await t.send({"type": "accept"})
        session_id = (await c.expect("paired"))["session_id"]
        peer = await c.start_media(session_id, video)
        await t.start_media(session_id, video)

        mark = len(c.messages)
        await t.close()  # the teller's browser is gone; no other teller is at work
        requeued = await c.expect("requeued", after=mark, timeout=20)
        assert (requeued["reason"], requeued["assistant"], requeued["position"]) == (
            "teller_disconnected", True, 1)
        await asyncio.sleep(3)  # the router runs every second: it would have sent her on
        assert not [m for m in c.messages[mark:] if m["type"] == "paired"]

        frames = peer.reception.frames["video"]
        await c.send({"type": "ask_for", "who": "digital_human"})
        paired = await c.expect("paired", after=mark)
        assert paired["peer"]["role"] == "digital_human"
        await c.expect("caption", after=mark, speaker="digital_human", timeout=30)
        deadline = time.monotonic() + 20
        # the assistant's face, on the connection she already had
        while peer.reception.video_size != (320, 240) and \
                time.monotonic() < deadline:  # noqa: ASYNC110 (polled)
            await asyncio.sleep(0.2)
        assert peer.reception.video_size == (320, 240)
        assert peer.reception.frames["video"] > frames
        assert not [m for m in c.messages[mark:] if m["type"] == "requeued"][1:]
        await c.send({"type": "leave"})
        await c.expect("ended", after=mark)

        # a customer whose media never starts does not wait on a black frame for long
        b = Participant(server.url, "bob")
        await b.connect()
        await b.send({"type": "join", "service": "general_enquiry", "with": "digital_human"})
        assert (await b.expect("paired"))["peer"]["role"] == "digital_human"
        notice = await b.expect("notice", timeout=20, where=lambda m: "could not connect"
                                in m["message"])
        back = await b.expect("requeued", timeout=5)
        assert (back["reason"], back["position"]) == ("assistant_unavailable", 1), notice
        await c.close()
        await b.close()
    finally:
        server.stop()


async def test_asking_the_assistant_to_open_an_account_puts_the_customer_first_for_a_teller(
        tmp_path: Path, video: list[bytes]) -> None:
    """Account opening has no flow the assistant runs: it says so, and the same session goes
    to the head of that service's queue, before a customer who was already waiting there."""
    server = start_server(tmp_path, env={"VBANK_DIGITAL_HUMAN": "true",
                                         "VBANK_MEDIA_WORKERS": "1"}, timeout=120)
    voice, mouth = PiperSynthesizer(), SpeechTrack()
    try:
        c, t, b = (Participant(server.url, name) for name in ("alice", "tina", "bob"))
        for who in (c, t, b):
            await who.connect()
        await t.send({"type": "status", "status": "available", "skills": ["account_opening"]})
        await t.expect("teller", status="available")
        await b.send({"type": "join", "service": "account_opening"})
        await b.expect("queued")
        await c.send({"type": "join", "service": "general_enquiry", "with": "digital_human"})
        session_id = (await c.expect("paired"))["session_id"]
        await c.start_media(session_id, video, voice=mouth)
        await c.expect("caption", speaker="digital_human", timeout=30,
                       where=lambda m: "help you" in m["text"])
        await asyncio.sleep(3)

        mark = len(c.messages)
        mouth.play(speech(voice, "I would like to open a new savings account, please."))
        changed = await c.expect("service", after=mark, timeout=30)
        assert (changed["session_id"], changed["service"], changed["previous"]) == (
            session_id, "account_opening", "general_enquiry")
        requeued = await c.expect("requeued", after=mark, timeout=20)
        assert (requeued["reason"], requeued["position"]) == ("service_changed", 1)
        said = " ".join(m["text"] for m in c.messages[mark:]
                        if m["type"] == "caption" and m.get("speaker") == "digital_human")
        assert "first in line" in said  # told before being let go

        await t.send({"type": "accept"})
        paired = await t.expect("paired")
        assert (paired["session_id"], paired["service"]) == (session_id, "account_opening")
        assert paired["peer"]["username"] == "alice"  # before bob, who waited there already
        for who in (c, t, b):
            await who.close()
    finally:
        mouth.stop()
        server.stop()
