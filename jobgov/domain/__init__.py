"""jobgov's pure domain: asks and decisions, budgets, usage, the plan config schema.

Nothing here does I/O, reads a clock or the environment, or imports anything of
jobgov's outside this package, nor anything heavier than pydantic: workflows
import it directly, and the stream activity and the CLI call the same functions.
"""
