"""Recommendation from human feedback: TF-Agents bandits on a learned reward, and off-policy evaluation."""
