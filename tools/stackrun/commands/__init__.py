"""One module per `stackrun` command. Each declares `COMMAND`, a `spec.Command` (name, help,
description, arguments: shared ones from `options`, its own as `spec.Argument`), from which
`stackrun.cli` builds its parser, and `run(args, root) -> int`, which runs it and returns the
exit code. Options several commands share are in `options`; the
common start of a run (environment, confirmation, target, Workspace) is in `context`, and
the run report of deploy, destroy and plan in `reported`. `stackrun.cli` registers them."""
