"""Which policies, profiles, job counts and rate grids the experiments use, and why.

Rate grids were found by sweeping vllm-fcfs on 1,000 InferCept jobs (seed 0). Each starts at
light load (avg JCT within ~1% of its no-contention value: the JCT is mostly tool time), is
dense around vllm-fcfs's knee, where returning calls start recomputing evicted contexts and
the JCT jumps, and runs well past it, so that a policy sustaining 1.5x vllm-fcfs's rate (and
the clairvoyant oracle) still crosses its own knee inside the grid. What vllm-fcfs showed:

* llama2-7b-a100: light load 69.8 s; 1.25x at 2.29 jobs/s, 1.5x at 2.40; 304 s at 4.
* llama2-13b-2xa100: light load 71.3 s; 1.25x at 2.58, 1.5x at 2.72; 265 s at 4.
* llama2-70b-4xa100: light load 77.7 s; a softer rise (91 s at 2, 114 s at 3) and then
  a cliff (288 s at 4); 1.25x at 2.35, 1.5x at 3.08. More KV (4 GPUs) than 7B, slower steps.

In the first full run with all eleven policies (git b39e62b) every policy crossed 1.25x
between 2.1 and 2.65 jobs/s, so the grids have extra points there (steps of 0.125-0.25):
the sustainable-rate ratios are interpolated across those intervals.
* autellix on llama2-7b-a100: light load 35.5 s at 0.02; cliff between 0.2 and 0.25 jobs/s
  (LATS programs make ~160 calls each).
* continuum on llama31-8b-h100 (200 jobs, ~70-90k tokens each): light load 30.9 s at 0.01;
  1.25x at ~0.05, collapse from 0.1.
"""

from __future__ import annotations

from astraea.experiments.spec import Options, RunSpec

# (workload, profile, jobs, quick jobs, rate grid, quick rate grid)
MixRow = tuple[str, str, int, int, tuple[float, ...], tuple[float, ...]]

# every policy the project means to measure; unregistered ones are skipped with a note
PEERS: tuple[str, ...] = (
    "astraea",
    "srpt-oracle",
    "vllm-fcfs",
    "vllm-priority",
    "sglang-hrrn",
    "infercept",
    "autellix-plas",
    "autellix-atlas",
    "continuum",
    "lamps",
    "fcfs-job",
)
LLAMA2_PROFILES: tuple[str, ...] = ("llama2-7b-a100", "llama2-13b-2xa100", "llama2-70b-4xa100")

LOAD_JOBS, LOAD_JOBS_QUICK = 1000, 500
LOAD_GRIDS: dict[str, tuple[float, ...]] = {
    "llama2-7b-a100": (
        0.25, 0.5, 1, 1.5, 2, 2.25, 2.375, 2.5, 2.625, 2.75, 3, 3.5, 4, 4.5, 5, 6, 8,
    ),
    "llama2-13b-2xa100": (
        0.25, 0.5, 1, 1.5, 2, 2.25, 2.5, 2.625, 2.75, 3, 3.25, 3.5, 4, 4.5, 5, 6, 8,
    ),
    "llama2-70b-4xa100": (
        0.25, 0.5, 1, 1.5, 2, 2.25, 2.5, 2.75, 3, 3.25, 3.5, 3.75, 4, 4.5, 5, 6, 8,
    ),
}  # fmt: skip
LOAD_GRIDS_QUICK: dict[str, tuple[float, ...]] = {
    "llama2-7b-a100": (0.25, 2.5, 3.5, 5),
    "llama2-13b-2xa100": (0.25, 3, 4, 6),
    "llama2-70b-4xa100": (0.25, 3.5, 5, 8),
}

# (workload, profile, jobs, quick jobs, grid, quick grid)
MIXES: tuple[MixRow, ...] = (
    (
        "autellix",
        "llama2-7b-a100",
        1000,
        300,
        (0.02, 0.05, 0.1, 0.15, 0.175, 0.2, 0.225, 0.25, 0.3, 0.4, 0.6, 1.0),
        (0.02, 0.2, 0.4),
    ),
    (
        "continuum",
        "llama31-8b-h100",
        200,
        60,
        (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.12, 0.15, 0.2),
        (0.01, 0.07, 0.15),
    ),
)

# more-mixes: the six agent-kind generators (docs/workloads.md), all on llama2-7b-a100. Each
# grid was read off vllm-fcfs (seed 0; 400 jobs, 200 for coding and lats): it starts at light
# load, is dense around the knee and ends past it. What vllm-fcfs showed (avg JCT):
#
# * toolbench: 10.3 s at 0.25, 14.5 s at 0.75, 19.1 s at 1; cliff at 1.25 (109 s), 221 s at 1.5.
# * chat: 79 s at 0.1 (mostly think time), 95 s at 1, 108 s at 1.5, 123 s at 3: a soft rise.
# * coding: 218 s at 0.002, 264 s at 0.006; cliff at 0.008 (1,165 s), 6,988 s at 0.012.
#   Each job ends near 26k tokens: 7B/A100's 116k-token KV holds about four of them.
# * bfcl: 2.1 s at 1, 4.1 s at 5, 7.5 s at 9; then 14.7 s at 12, 25 s at 15, 33 s at 20.
# * react: 6.3 s at 0.5, 9.0 s at 2, 11.4 s at 2.5; cliff at 3 (49 s), 127 s at 3.5.
# * lats: 216 s at 0.002, 277 s at 0.005; cliff at 0.0065 (5,412 s), 8,338 s at 0.01.
#   ~150 calls and ~11k generated tokens per job: decode-bound, with contexts to ~17k.
#
# (workload, profile, jobs, quick jobs, grid, quick grid), tuning mixes first
MORE_MIXES: tuple[MixRow, ...] = (
    (
        "toolbench",
        "llama2-7b-a100",
        400,
        150,
        (0.25, 0.5, 0.75, 0.875, 1, 1.125, 1.25, 1.5, 2, 3, 5),
        (0.25, 1.125, 2),
    ),
    (
        "chat",
        "llama2-7b-a100",
        400,
        150,
        (0.1, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 3, 5),
        (0.25, 1.25, 3),
    ),
    (
        "coding",
        "llama2-7b-a100",
        200,
        60,
        (0.002, 0.004, 0.005, 0.006, 0.007, 0.008, 0.01, 0.012, 0.015),
        (0.002, 0.007, 0.012),
    ),
    (
        "bfcl",
        "llama2-7b-a100",
        400,
        150,
        (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 30),
        (1, 8, 15),
    ),
    (
        "react",
        "llama2-7b-a100",
        400,
        150,
        (0.5, 1, 1.5, 2, 2.25, 2.5, 2.75, 3, 3.5, 4, 5, 7),
        (0.5, 2.5, 4),
    ),
    (
        "lats",
        "llama2-7b-a100",
        200,
        60,
        (0.002, 0.003, 0.004, 0.005, 0.0055, 0.006, 0.007, 0.01),
        (0.002, 0.005, 0.007),
    ),
)

# kv-sweep: near astraea's expected knee (~1.5x vllm-fcfs's sustainable rate) and past it
KV_PROFILE = "llama2-7b-a100"
KV_RATES, KV_RATES_QUICK = (3.5, 5.0), (3.5, 5.0)
KV_JOBS, KV_JOBS_QUICK = 1000, 500


def all_policies() -> list[str]:
    """The project's peers in a fixed order, then any other registered policy."""
    from astraea.policies import policy_names

    return list(PEERS) + [p for p in policy_names() if p not in PEERS]


def rates(options: Options, full: tuple[float, ...], quick: tuple[float, ...]) -> list[float]:
    if options.rates is not None:
        return list(options.rates)
    return list(quick if options.quick else full)


def jobs(options: Options, full: int, quick: int) -> int:
    if options.num_jobs is not None:
        return options.num_jobs
    return quick if options.quick else full


def mix_specs(rows: tuple[MixRow, ...], options: Options) -> list[RunSpec]:
    """Every policy at every rate of each (workload, profile, jobs, quick jobs, grid, quick
    grid) row: the runs of a load sweep over several mixes."""
    specs = []
    for workload, profile, full_n, quick_n, grid, quick_grid in rows:
        n = jobs(options, full_n, quick_n)
        for rate in rates(options, grid, quick_grid):
            for policy in all_policies():
                specs.append(
                    RunSpec(profile, workload, n, rate, options.seed, policy, label=policy)
                )
    return specs
