"""The classifier's shipped weights are reproducible from the train and dev splits, and the build never reads test.

Also checks the corpus sizes the issue asks for and that every intent is in every split.
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.router import training
from agent.router.intents import Intent

CORPUS = training.DEFAULT_CORPUS


def test_rebuilding_from_train_and_dev_reproduces_the_shipped_weights_and_never_opens_the_test_split(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[str] = []
    real_open, real_path_open = builtins.open, Path.open

    def spy_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    def spy_path_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(self))
        return real_path_open(self, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(Path, "open", spy_path_open)
    rebuilt = training.dumps(training.build())
    monkeypatch.undo()
    assert rebuilt == training.OUTPUT.read_text(encoding="utf-8")
    read = {Path(p).name for p in opened if p.endswith(".yaml")}
    assert read == {"train.yaml", "dev.yaml"}
    assert training.main(["--check"]) == 0


def test_the_build_refuses_the_test_split() -> None:
    with pytest.raises(ValueError, match="never used"):
        training.build(splits=("train.yaml", "test.yaml"))


def test_the_corpus_has_the_sizes_the_issue_asks_for() -> None:
    splits = {name: yaml.safe_load((CORPUS / f"{name}.yaml").read_text())["cases"] for name in ("train", "dev", "test")}
    assert sum(len(c) for c in splits.values()) >= 400
    ids = [c["id"] for cases in splits.values() for c in cases]
    assert len(ids) == len(set(ids))
    texts = [c["text"].lower() for cases in splits.values() for c in cases]
    assert len(texts) == len(set(texts))
    for cases in splits.values():
        assert {c["intent"] for c in cases} >= {i.value for i in Intent}
    assert len(yaml.safe_load((CORPUS / "multiturn.yaml").read_text())["scenarios"]) >= 40
    safety = yaml.safe_load((CORPUS / "safety.yaml").read_text())["cases"]
    assert len(safety) >= 40
    assert {c["user"] for c in safety} == {"dev-viewer", "dev-operator", "dev-publisher", "dev-approver", "dev-admin"}
