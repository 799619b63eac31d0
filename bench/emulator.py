"""Print the stack's baselines (bare Kopf on the emulator, bare dramatiq on Redis).

Later benchmarks (bench/chat.py, bench/orchestration.py, bench/drift.py) measure the same
baselines in their own run and print their figures as ratios against them.
Usage: .venv/bin/python bench/emulator.py
"""

from __future__ import annotations

import os
import platform

from baselines import measure


def main() -> None:
    results = measure()
    print(
        f"Ringpilot stack baselines ({platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores)"
    )
    print(f"{'measurement':<52} {'value':>12}")
    print(f"{'bare Kopf handler on the emulator (objects/s)':<52} {results['kopf_objects_per_second']:>12.1f}")
    print(
        f"{'bare dramatiq no-op on Redis, 1 proc x 4 thr (msg/s)':<52} {results['dramatiq_messages_per_second']:>12.1f}"
    )


if __name__ == "__main__":
    main()
