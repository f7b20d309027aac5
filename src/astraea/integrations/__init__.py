"""Astraea inside other serving engines.

``astraea.integrations.vllm`` is a scheduler class for vLLM V1 (``--scheduler-cls``) that
orders waiting work by an astraea policy and keeps a tool-waiting job's prefix blocks from
eviction while the policy says preserve (docs/vllm.md). Everything that does not touch vLLM
lives in vLLM-free modules (``tracker``, ``trace``, ``hints``, ``launch``), so the main test
suite covers it without vLLM installed.
"""
