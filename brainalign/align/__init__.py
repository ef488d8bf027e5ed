"""Alignment measures beyond RDMs: CKA, the CCA family, shape metrics, kNN alignment,
soft matching and linear predictivity, with stimuli aligned by id and other dims broadcast.
"""
