"""Mission Control's own jobs, governed: ``jobgov mc watch`` follows its state files.

Mission Control (the opencode plugin that launches one agent per git worktree) records its jobs
in ``~/.local/share/opencode-mission-control/<repo>/state/``. :class:`Watcher` starts one
governed job for each of its serve-mode jobs and ends it when Mission Control does.
"""

from jobgov.missioncontrol.state import DEFAULT_ROOT, McJob, RepoState, read_repo, translate_policy
from jobgov.missioncontrol.watch import MEMO_KEY, OWNER, Governed, Watcher

__all__ = ["DEFAULT_ROOT", "MEMO_KEY", "OWNER", "Governed", "McJob", "RepoState", "Watcher", "read_repo",
           "translate_policy"]
