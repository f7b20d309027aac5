"""The closed-form alone-on-the-engine JCT agrees with the simulator running the job alone."""

from dataclasses import replace

import pytest

from astraea.core import KVAction, Policy
from astraea.sim.profiles import get_profile
from astraea.sim.simulator import Simulator, config_for_profile
from astraea.sim.solo import solo_jct
from astraea.workloads.registry import generate_workload


class KeepKV(Policy):
    name = "keep"

    def on_tool_call(self, job, kv):
        return KVAction.PRESERVE


@pytest.mark.parametrize("workload", ["infercept", "autellix", "continuum"])
@pytest.mark.parametrize("budget", [512, 8192])
def test_closed_form_matches_simulated_solo_run(workload, budget):
    profile = get_profile("llama2-7b-a100")
    config = config_for_profile(profile, max_num_batched_tokens=budget)
    for spec in generate_workload(workload, 8, 1.0, seed=3):
        alone = replace(spec, arrival=0.0)
        simulated = Simulator([alone], KeepKV(), profile, config).run().jobs[0].jct
        assert solo_jct(spec, profile, config) == pytest.approx(simulated, rel=1e-9)
