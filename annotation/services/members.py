"""Changing and removing project members (adding is ``work.add_member``)."""

from django.db import transaction

from ..labels import LabelError
from ..models import Membership, Project, ProjectRole
from ..permissions import require_admin


def _guard_own_admin_role(membership: Membership, by) -> None:
    """A project admin may not drop their own admin role (staff stay admins anyway)."""
    if membership.user_id == by.pk and membership.role == ProjectRole.ADMIN and not by.is_staff:
        raise LabelError("role", "you cannot remove your own admin role; ask another project admin")


@transaction.atomic
def change_member_role(project: Project, *, by, membership_id: int, role: str) -> Membership:
    """Gives a member another role in place of this one (merging with a role they already hold)."""
    require_admin(by, project)
    if role not in ProjectRole.values:
        raise LabelError("role", f"{role!r} is not one of {', '.join(ProjectRole.values)}")
    membership = Membership.objects.select_for_update().filter(project=project, pk=membership_id).first()
    if membership is None:
        raise LabelError("membership", f"no membership {membership_id} in project {project.slug!r}")
    if membership.role == role:
        return membership
    _guard_own_admin_role(membership, by)
    existing = Membership.objects.filter(project=project, user_id=membership.user_id, role=role).first()
    if existing is not None:
        membership.delete()
        return existing
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def remove_member(project: Project, *, by, membership_id: int) -> None:
    """Ends one role of a member; their labels stay, their open leases run out."""
    require_admin(by, project)
    membership = Membership.objects.select_for_update().filter(project=project, pk=membership_id).first()
    if membership is None:
        raise LabelError("membership", f"no membership {membership_id} in project {project.slug!r}")
    _guard_own_admin_role(membership, by)
    membership.delete()
