"""Running an environment's stacks: deploy, plan, destroy, output; guard and report."""
