"""A step whose worker is silent says so on the task: `Waiting: worker unavailable since …`, until a report."""

from __future__ import annotations

from controller.orchestration.steps import DEPLOY_RING_ACTOR, GENERATE_EVIDENCE_ACTOR
from tests.orchestration.driver import FakeWorker, Run


async def test_a_silent_worker_sets_waiting_naming_the_worker_until_a_report_clears_it() -> None:
    run = Run({"maxRing": 0}, worker=FakeWorker(silent={(DEPLOY_RING_ACTOR, 1)}))
    seen: list[dict[str, object]] = []
    for _ in range(300):
        if run.phase == "Succeeded":
            break
        await run.tick()
        waiting = run.condition("Waiting")
        if waiting is not None and waiting["status"] == "True":
            seen.append(waiting)
    assert run.phase == "Succeeded"
    assert seen, "no Waiting condition while the worker was silent"
    assert seen[0]["reason"] == "WorkerUnavailable"
    assert str(seen[0]["message"]).startswith("worker unavailable since ")
    assert "Deploy of ring 0 attempt 1 went silent" in str(seen[0]["message"])
    cleared = run.condition("Waiting")
    assert cleared is not None and cleared["status"] == "False" and cleared["reason"] == "WorkerAvailable"


async def test_a_lost_message_also_says_the_worker_is_unavailable() -> None:
    run = Run({"maxRing": 0}, worker=FakeWorker(lost={(GENERATE_EVIDENCE_ACTOR, 1)}))
    messages: list[str] = []
    for _ in range(300):
        if run.phase == "Succeeded":
            break
        await run.tick()
        waiting = run.condition("Waiting")
        if waiting is not None and waiting["status"] == "True":
            messages.append(str(waiting["message"]))
    assert any("was not picked up" in m for m in messages), messages
    assert run.condition("Waiting")["status"] == "False"  # type: ignore[index]
