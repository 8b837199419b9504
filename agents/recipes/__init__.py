"""Recipes that compose whole pipelines from the learners below them: the quickstart, the method comparison and the
run report."""
