"""Planning: a pure diff of the resolved model against what libvirt holds."""

from corral.plan.actions import Action, ActionKind, Plan
from corral.plan.diff import plan_project
from corral.plan.observed import ObservedHost, ObservedProject, ObservedSwitch

__all__ = [
    "Action",
    "ActionKind",
    "ObservedHost",
    "ObservedProject",
    "ObservedSwitch",
    "Plan",
    "plan_project",
]
