"""Hook points: where guardrails (Portkey's before/after request hooks) run for each target.

`before_request` runs once a target is chosen and its body prepared, before the cache and
the first attempt: it may refuse the request (446) or return a changed body. `after_answer`
runs on the target's answer before it is relayed: it may refuse it (446) or flag it (246).
Neither does anything yet; the guardrails issue fills them in.
"""

from __future__ import annotations

from gateway.contracts.answer import Answer
from gateway.contracts.outcome import Outcome
from gateway.contracts.plan import Leaf
from gateway.pipeline.prepare import Prepared


async def before_request(outcome: Outcome, leaf: Leaf, prepared: Prepared) -> Prepared:
    return prepared


async def after_answer(outcome: Outcome, leaf: Leaf, answer: Answer) -> Answer:
    return answer
