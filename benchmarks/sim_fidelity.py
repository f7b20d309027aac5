"""Simulator fidelity: one agent trace on the real engine and in the simulator, JCT compared.

Why: every result in docs/results.md comes from the simulator; this checks that, fed the cost
profile fitted to the engine (``astraea profile``), it predicts the engine's job completion
times. The engine (SmolLM2-135M, fp32, CPU) replays the trace on wall-clock time: real
arrivals, real tool waits, forced output lengths. The simulator runs the same jobs with the
same policy and scheduler settings. Target: average JCT within 15% per policy.

    python benchmarks/sim_fidelity.py            # ~4-5 min on the shared 2-core machine
    python benchmarks/sim_fidelity.py --quick    # fewer jobs, small profile grid
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from pathlib import Path

from _common import RESULTS, write_result

from astraea.core.counters import SchedulerCounters
from astraea.core.plan import StepPlan, StepResult
from astraea.core.scheduler import StepOutcome
from astraea.engine.config import EngineConfig
from astraea.engine.engine import Engine
from astraea.engine.profiler import profile_engine, service_model
from astraea.engine.replay import agent_trace, replay
from astraea.engine.runner import ModelRunner
from astraea.engine.weights import load_checkpoint
from astraea.sim.profiles import CostProfile, save_profile
from astraea.sim.run import simulate

TARGET = 0.15  # |sim / real - 1| of the average JCT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="6 jobs, small profile grid")
    parser.add_argument("--jobs", type=int, default=None, help="jobs in the trace (default 14)")
    parser.add_argument("--rate", type=float, default=0.4, help="Poisson arrivals, jobs/s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--policies", default="astraea,vllm-fcfs")
    args = parser.parse_args()
    jobs = args.jobs or (6 if args.quick else 14)
    config = EngineConfig(
        dtype="float32",
        block_size=16,
        num_gpu_blocks=256,
        num_cpu_blocks=256,
        max_num_seqs=16,
        max_num_batched_tokens=256,
        num_threads=args.threads,
    )
    started = time.perf_counter()
    checkpoint = load_checkpoint(with_tokenizer=False)
    runner = ModelRunner.from_checkpoint(checkpoint, config)
    model = checkpoint.path.stem
    del checkpoint
    load_before = os.getloadavg()
    fitted = profile_engine(runner, model, quick=args.quick)
    for m in fitted.measurements:
        print(f"  {m.shape.label():40} {m.seconds * 1e3:8.1f} ms")
    profile = fitted.profile
    profile_path = save_profile(profile, RESULTS / "sim_fidelity_profile.json")
    print(f"fit: a={profile.a:.4g} b={profile.b:.4g} c={profile.c:.4g} e={profile.e:.4g} "
          f"R^2={fitted.fit.r2:.3f} max rel err={fitted.fit.max_rel_error:.1%}")  # fmt: skip
    specs = agent_trace(jobs, args.rate, args.seed)
    rows = []
    for policy in [p.strip() for p in args.policies.split(",") if p.strip()]:
        service = service_model(profile, config.max_num_batched_tokens)
        engine = Engine(runner, policy=policy, service=service)
        steps = _record_steps(engine, profile)
        load = os.getloadavg()[0]
        real = replay(engine, specs, seed=args.seed)
        if engine.scheduler.kv.device.num_used or engine.scheduler.jobs:
            raise RuntimeError("the engine kept KV blocks or jobs after the replay")
        sched = dataclasses.asdict(engine.scheduler.config)
        sim = simulate(specs, policy, profile, config_overrides=sched, slowdown=False)
        sim_jct = {m.job_id: m.jct for m in sim.jobs}
        per_job = [sim_jct[j.job_id] / j.jct - 1 for j in real.jobs]
        ratio = sim.summary["avg_jct"] / real.avg_jct
        rows.append(
            {
                "policy": policy,
                "real_avg_jct": real.avg_jct,
                "sim_avg_jct": sim.summary["avg_jct"],
                "sim_over_real": ratio,
                "within_target": abs(ratio - 1) <= TARGET,
                "real_makespan": real.makespan,
                "sim_makespan": sim.summary["makespan"],
                "real_plans": real.num_plans,
                "sim_plans": sim.result.num_plans,
                "step_time_measured_over_predicted": _step_ratios(steps),
                "load_average_1min_before_and_after": [load, os.getloadavg()[0]],
                "per_job_rel_error_mean_abs": statistics.fmean(abs(e) for e in per_job),
                "per_job_rel_error_max_abs": max(abs(e) for e in per_job),
                "real_jct": {j.job_id: round(j.jct, 3) for j in real.jobs},
                "sim_jct": {k: round(v, 3) for k, v in sim_jct.items()},
                "real_counters": _counters(engine.scheduler.counters),
                "sim_counters": _counters(sim.result.counters),
                "scheduler": sched,
            }
        )
        steps_ratio = rows[-1]["step_time_measured_over_predicted"]["all"]
        print(f"{policy}: real {real.avg_jct:.2f} s, sim {sim.summary['avg_jct']:.2f} s, "
              f"sim/real {ratio:.3f}; steps measured/predicted {steps_ratio:.3f}")  # fmt: skip
    path = write_result(
        "sim_fidelity",
        {
            "target": f"|sim avg JCT / real avg JCT - 1| <= {TARGET}",
            "setup": (
                f"{model}, fp32, CPU, torch.set_num_threads({args.threads}) (the machine has "
                f"{os.cpu_count()} cores shared with other work); trace: agent_trace({jobs} jobs, "
                f"{args.rate} jobs/s, seed {args.seed}): 2-3 calls, prompts 50-400, tool results "
                "16-96, outputs 16-64 tokens (forced), tool latencies 0.5-3 s"
            ),
            "load_average_before_and_after": [load_before, os.getloadavg()],
            "profile_file": str(profile_path.relative_to(Path.cwd()))
            if profile_path.is_relative_to(Path.cwd())
            else str(profile_path),
            "profile": {k: v for k, v in profile.to_dict().items() if k != "source"},
            "fit": {"r2": fitted.fit.r2, "max_rel_error": fitted.fit.max_rel_error},
            "policies": rows,
            "all_within_target": all(r["within_target"] for r in rows),
            "wall_seconds": time.perf_counter() - started,
        },
    )
    print(f"wrote {path}")


def _record_steps(engine: Engine, profile: CostProfile) -> dict[str, list[float]]:
    """Per kind of plan (pure decode, or with prefill), the measured and the profile's
    predicted seconds summed: the cost model checked step by step, apart from scheduling."""
    sums: dict[str, list[float]] = {"decode": [0.0, 0.0], "prefill": [0.0, 0.0]}
    update, block_size = engine.scheduler.update, engine.scheduler.config.block_size

    def recording(plan: StepPlan, result: StepResult, now: float) -> StepOutcome:
        features = (plan.num_prefill_tokens, plan.num_decode_seqs, plan.sum_kv_tokens)
        predicted = profile.iteration_time(*features) * result.num_steps
        predicted += profile.swap_time(plan.num_swapped_blocks * block_size)
        kind = sums["prefill" if plan.num_prefill_tokens else "decode"]
        kind[0] += result.elapsed
        kind[1] += predicted
        return update(plan, result, now)

    engine.scheduler.update = recording  # type: ignore[method-assign]
    return sums


def _step_ratios(sums: dict[str, list[float]]) -> dict[str, float]:
    out = {kind: m / p for kind, (m, p) in sums.items() if p}
    out["all"] = sum(m for m, _ in sums.values()) / sum(p for _, p in sums.values())
    out["measured_busy_seconds"] = sum(m for m, _ in sums.values())
    return out


def _counters(counters: SchedulerCounters) -> dict[str, object]:
    keep = ("preemptions", "recomputed_tokens", "swapped_out_blocks", "kv_actions")
    return {k: getattr(counters, k) for k in keep}


if __name__ == "__main__":
    main()
