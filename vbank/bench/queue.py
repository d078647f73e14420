"""``vbank bench queue``: assignment latency with many waiting customers and tellers."""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from vbank.bench.report import report
from vbank.domain.queue import BranchQueue, QueueEmpty, TellerStatus
from vbank.domain.services import SERVICES, TIER_PRIORITY


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str], json_out: Path | None) -> int:
    parser = argparse.ArgumentParser(prog="vbank bench queue")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--tellers", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    services = list(SERVICES)
    q = BranchQueue({s.id: s.handle_time_s for s in SERVICES.values()})
    priorities = [0] * 8 + list(TIER_PRIORITY.values())

    enqueue_s: list[float] = []
    for i in range(args.customers):
        t0 = time.perf_counter()
        q.enqueue(f"s{i}", f"c{i}", rng.choice(services), rng.choice(priorities), now=float(i))
        enqueue_s.append(time.perf_counter() - t0)
    for t in range(args.tellers):
        skills = rng.sample(services, rng.randint(1, len(services)))
        q.set_teller(f"t{t}", TellerStatus.AVAILABLE, skills)

    # Every teller accepts, finishes and accepts again until the queues are empty.
    accept_s: list[float] = []
    start = time.perf_counter()
    assigned = 0
    while any(q.lengths().values()) and assigned < args.customers:
        progressed = False
        for t in range(args.tellers):
            teller = f"t{t}"
            t0 = time.perf_counter()
            try:
                q.accept(teller, now=0.0)
            except QueueEmpty:  # nothing left for this teller's skills
                continue
            accept_s.append(time.perf_counter() - t0)
            q.release(teller)
            assigned += 1
            progressed = True
        if not progressed:
            break
    elapsed = time.perf_counter() - start
    report("queue", {
        "customers": args.customers,
        "tellers": args.tellers,
        "assigned": assigned,
        "assign_p50_us": round(statistics.median(accept_s) * 1e6, 2),
        "assign_p99_us": round(percentile(accept_s, 0.99) * 1e6, 2),
        "enqueue_p50_us": round(statistics.median(enqueue_s) * 1e6, 2),
        "enqueue_p99_us": round(percentile(enqueue_s, 0.99) * 1e6, 2),
        "assignments_per_s": round(assigned / elapsed, 1),
    }, json_out)
    return 0
