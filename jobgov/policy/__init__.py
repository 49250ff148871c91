"""Turning a permission ask into facts the pure policy can judge.

:func:`~jobgov.policy.normalize.normalize` resolves paths on the agent's machine
and parses shell commands (tree-sitter-bash); it runs in the stream activity (or
the CLI), never in a workflow. Deciding is :func:`jobgov.domain.decide.decide`.
"""
