"""Discrete-event simulator: events, simulated executor and cost-model profiles."""
