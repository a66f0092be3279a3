"""Insights: gaming detection, spike alerts and impact per token (work in progress)."""
