"""What a passed ``verify`` changes about a delivery: a handshake hookline answers
itself, or a body a check decrypted.

WeCom's ``echostr`` GET and Feishu's ``url_verification`` check that the URL belongs
to whoever holds the credentials; hookline answers them (no execution starts) and
records the delivery as accepted, with the handshake as its reason. A decrypted body
(WeCom, Feishu) replaces the parsed envelope as ``$context.data``. A platform that wants
its own acknowledgement (DingTalk's events) gets it once the delivery is admitted, in
place of the workflow's answer.
"""

from __future__ import annotations

import logging

import attrs

from ..engine._delivery import Delivery
from ..engine._engine import Engine
from ..errors import StoreError
from ..store._ops import RecordDelivery
from ..store._records import Answer
from ..verify import DirectAnswer, Opened

__all__ = ["answer_handshake", "direct_answer", "opened_delivery"]

log = logging.getLogger("hookline.http")


async def answer_handshake(engine: Engine, delivery: Delivery, answer: DirectAnswer) -> Answer:
    """Record ``delivery`` as answered by hookline and return ``answer`` to send."""
    record = delivery.record("accepted", reason=answer.reason, status=answer.status)
    try:
        await engine.store.post(RecordDelivery(record))
    except StoreError:
        # The platform still gets its answer: its URL check does not depend on the log.
        log.exception("could not record handshake delivery %s", delivery.id)
    return direct_answer(answer)


def direct_answer(answer: DirectAnswer) -> Answer:
    """``answer`` as the ingress sends it."""
    return Answer(answer.status, (("content-type", answer.content_type),), answer.body)


def opened_delivery(delivery: Delivery, opened: Opened | None) -> Delivery:
    """``delivery`` with the decrypted body as its data and the check's context added."""
    if opened is None:
        return delivery
    return attrs.evolve(delivery, data=opened.data, extra={**delivery.extra, **opened.context})
