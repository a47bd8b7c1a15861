"""One module per `stackrun` command. Each declares `COMMAND`, a `spec.Command` (name, help,
description, arguments: shared ones from `options`, its own as `spec.Argument`/`spec.flag`),
from which `stackrun.cli` builds its parser, and `run(args, root) -> int`, which runs it and
returns the exit code. The common start of a run (environment, confirmation, target,
Workspace) is in `context`; the run report and --promote-from of deploy, destroy and plan in
`reported`. `stackrun.cli` registers them."""
