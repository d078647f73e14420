"""The live branch: who is connected, the queues, the calls, and the messages they exchange.

The hub (``hub.Branch``) sits between the signaling WebSocket (``api.ws``), the session's
rules and the queue (``domain``), the media workers (``rtc.worker``) and the database. Around
it, each with one job and importing nothing of it: ``outbox`` (who is signed in, sends),
``board`` (queue pushes), ``sealing`` (recordings and evidence), ``routing`` (who the
digital human serves), ``assistant`` (its side of the hub), ``nodes`` (other nodes'
messages), ``duties`` (background tasks) and ``errors``.
"""

from vbank.branch.errors import BranchError
from vbank.branch.hub import TELLER_OUTCOMES, Branch
from vbank.branch.routing import BranchPolicy

__all__ = ["TELLER_OUTCOMES", "Branch", "BranchError", "BranchPolicy"]
