"""Phrasings fixed in the second pass from the train and dev errors: short status questions, names that
are not apps, records "of"/"for" an app, approval-like statements, and messages Ringpilot cannot help with."""

from __future__ import annotations

import pytest

from agent.router.entities import extract
from agent.router.intents import Intent
from agent.router.routing import CAPABILITIES, route

APPS = ("payments", "web")


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("overall status?", Intent.HEALTH),
        ("health check", Intent.HEALTH),
        ("breaker state?", Intent.BREAKERS),
        ("what's going on?", Intent.RUNNING_TASKS),
        ("what is currently being deployed?", Intent.RUNNING_TASKS),
        ("is web 1.4.2 deployed to canary?", Intent.RING_DEPLOYMENTS),
        ("check on payments for me", Intent.APP_STATUS),
        ("show canary", Intent.RING_DEPLOYMENTS),
    ],
)
def test_short_read_questions_reach_a_read_intent(text: str, intent: Intent) -> None:
    decision = route(text, APPS)
    assert decision.intent is intent and not decision.clarifying, decision.why


@pytest.mark.parametrize("word", ["running", "being", "overall", "things", "check", "breakers", "overview"])
def test_common_words_are_never_app_names(word: str) -> None:
    assert extract(f"status of the {word} app thing", APPS).app != word
    assert extract(f"{word} status", APPS).app is None


@pytest.mark.parametrize(
    ("text", "app"),
    [
        ("audit of checkout", "checkout"),
        ("audit for billing please", "billing"),
        ("changelog for search-api", "search-api"),
    ],
)
def test_an_app_after_for_or_of_in_a_records_phrasing_is_extracted(text: str, app: str) -> None:
    decision = route(text, APPS)
    assert decision.intent is Intent.HISTORY and decision.arguments.get("app") == app, decision.why


@pytest.mark.parametrize(
    "text", ["I think payments-2-0-0-cab is fine", "web 1.6.0 is ready for global", "no objections to web-1-5-0-cab"]
)
def test_an_action_hinted_at_in_a_statement_gets_a_clarifying_question(text: str) -> None:
    decision = route(text, APPS)
    assert decision.clarifying and decision.tool is None, decision.why


def test_a_message_with_no_cue_and_nothing_named_gets_the_capabilities() -> None:
    assert route("what's the weather like in berlin", APPS).text == CAPABILITIES
