"""The deploy room's front door: its commands, each a pipeline of named stages.

Each command is the list of its stages, run in order by `pipeline.execute` over one `Run`:

    deploy          start_build -> backend_and_guard -> build_done -> local_baseline
                    -> open_states -> select_stacks -> deploy_stacks -> record_release
                    -> leave_guard -> print_summary                         (apply.py)
    deploy --plan   load_manifest -> refuse_unplanned -> build_artifacts -> open_states
                    -> take_guard -> check_saved_plans -> local_baseline -> apply_saved_plans
                    -> record_release -> leave_guard -> print_summary       (saved.py)
    plan            build_artifacts -> start_manifest -> pending_without_backend
                    -> read_all_states -> plan_stacks (side by side) -> save_manifest
                    -> print_summary                                        (plan.py)
    destroy         build_artifacts -> stop_without_backend -> read_all_states
                    -> refuse_consumed_destroy -> refuse_protected_destroy -> take_guard
                    -> read_outputs -> destroy_stacks -> leave_guard
                    -> print_summary                                        (destroy.py)

deploy, plan and destroy take `only` (--stack/--exclude, selection.py): just those stacks, the
outputs of the others read from their state, once (read_unselected_outputs).

One stack of a deploy: stacks.py; side by side (deploy and plan): parallel.py; the terraform
steps of a stack: steps.py; outputs and the inputs they become: outputs.py; the backend and the
guard: backend.py; console lines and report entries: progress.py.
"""

from stackrun.deploy.apply import deploy
from stackrun.deploy.backend import bootstrap
from stackrun.deploy.destroy import deletion_protected_stacks, destroy
from stackrun.deploy.outputs import collect_outputs, outputs_document, read_states
from stackrun.deploy.plan import plan
from stackrun.deploy.saved import deploy_saved

__all__ = [
    "bootstrap",
    "collect_outputs",
    "deletion_protected_stacks",
    "deploy",
    "deploy_saved",
    "destroy",
    "outputs_document",
    "plan",
    "read_states",
]
