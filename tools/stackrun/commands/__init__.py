"""One module per `stackrun` command. Each has `add_parser(commands)`, which adds its
subcommand (arguments and help) and returns its parser, and `run(args, root) -> int`, which
runs it and returns the exit code. Options several commands share are in `options`; the
common start of a run (environment, confirmation, target, Workspace) is in `context`, and
the run report of deploy, destroy and plan in `reported`. `stackrun.cli` registers them."""
