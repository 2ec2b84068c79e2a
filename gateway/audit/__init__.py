"""The window's audit trail: which events enter the ledger, the ledger endpoints, and the trace view.

``events`` builds entries (``gateway/trail.py`` ties them to the transaction of the change they
record), ``service`` owns the signing key and the sequencer task and answers the ledger reads,
``endpoints`` publishes checkpoints, proofs and entries, and ``trace`` answers "where did this declaration come from and where did it go".
"""
