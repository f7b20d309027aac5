"""Workloads: the JSONL trace format, synthetic generators and dataset importers.

Every generator takes ``(num_jobs, rate, rng)`` (``rng``: a ``random.Random`` or an int
seed), returns ``JobSpec``s with Poisson arrivals at ``rate`` jobs/s, and is deterministic
for a seed. Their module docstrings cite the source statistics and state every choice.
"""

from astraea.workloads.arrivals import poisson_arrivals
from astraea.workloads.autellix import AUTELLIX_CLASSES, generate_autellix
from astraea.workloads.bfcl import generate_bfcl
from astraea.workloads.chat import generate_chat
from astraea.workloads.coding import generate_coding
from astraea.workloads.continuum import CONTINUUM_CLASSES, generate_continuum
from astraea.workloads.csv_traces import load_azure, load_burstgpt
from astraea.workloads.formats import TRACE_FORMATS, load_trace, trace_format_names
from astraea.workloads.importers import load_infercept_dataset, load_mooncake_trace
from astraea.workloads.infercept import CONTEXT_CAP, INFERCEPT_TYPES, generate_infercept
from astraea.workloads.lats import generate_lats
from astraea.workloads.react import generate_react
from astraea.workloads.registry import (
    EVALUATION_MIXES,
    TUNING_MIXES,
    WORKLOADS,
    generate_workload,
    workload_names,
)
from astraea.workloads.shapes import Shape, shape
from astraea.workloads.sharegpt import load_sharegpt
from astraea.workloads.toolbench import generate_toolbench
from astraea.workloads.trace import (
    TraceFormatError,
    job_from_dict,
    job_to_dict,
    read_trace,
    write_trace,
)

__all__ = [
    "AUTELLIX_CLASSES",
    "CONTEXT_CAP",
    "CONTINUUM_CLASSES",
    "EVALUATION_MIXES",
    "INFERCEPT_TYPES",
    "TRACE_FORMATS",
    "TUNING_MIXES",
    "WORKLOADS",
    "Shape",
    "TraceFormatError",
    "generate_autellix",
    "generate_bfcl",
    "generate_chat",
    "generate_coding",
    "generate_continuum",
    "generate_infercept",
    "generate_lats",
    "generate_react",
    "generate_toolbench",
    "generate_workload",
    "job_from_dict",
    "job_to_dict",
    "load_azure",
    "load_burstgpt",
    "load_infercept_dataset",
    "load_mooncake_trace",
    "load_sharegpt",
    "load_trace",
    "poisson_arrivals",
    "read_trace",
    "shape",
    "trace_format_names",
    "workload_names",
    "write_trace",
]
