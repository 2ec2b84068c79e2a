"""The registry as the regulators see it: their views of each registration, the changes feed, the access log.

The record itself, its versions and the sharing policy that decides each regulator's view live in
``gateway/enterprises``; this package only reads them, so the arrows run one way.
"""
