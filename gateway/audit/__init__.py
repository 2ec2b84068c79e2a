"""The window's audit trail: which events enter the ledger, the ledger endpoints, and the trace view.

``events`` builds entries, ``trail`` ties them to the transaction of the change they record,
``service`` owns the signing key and the sequencer task, ``endpoints`` publishes checkpoints, proofs
and entries, and ``trace`` answers "where did this declaration come from and where did it go".
"""
