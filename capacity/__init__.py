"""Capacity planning (issue 12 item 5): the national traffic model, measured per-request costs, the plan."""
