"""Figures and tables made from simulation or benchmark reports."""
