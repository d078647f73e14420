"""Media primitives under both the WebRTC layer (``vbank.rtc``) and the speech and avatar
layers (``vbank.speech``, ``vbank.avatar``): encoded packets as they arrive
(``packets``), fan-out of one inbound track to several consumers (``relay``), and the
pacing clock outbound tracks are timed by (``pacing``). It imports none of them."""
